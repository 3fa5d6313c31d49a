// The debrief on the board (schema v2, see protocol/src/board.rs): agreements and next steps,
// the facilitator's flags on notes (pin, highlight, hide) and the order and visibility they give.
//
// Like labrun.ts: readers treat every field as optional; writers take the draft of
// `handle.change`, write only inside maps that exist (never create `agreements` or `notes`),
// set single keys (which merge) and return whether they changed anything.

import { isPhotoId, str, type Note } from "./board";
import { agreementsOf, isObj, num, type Agreement, type RunDoc } from "./labrun";

type Scalar = (s: string) => unknown;
/** Replaces a collaborative text at `path` by `value` with a minimal splice (Automerge's `updateText`). */
export type UpdateText = (path: string[], value: string) => void;

export const MAX_AGREEMENT_CHARS = 500;
export const MAX_OWNER_CHARS = 60;

/** Whether a phase is a debrief (where agreements are made): its id contains "debrief". */
export function isDebrief(phaseId: string | undefined): boolean {
  return !!phaseId && phaseId.includes("debrief");
}

/** Text as typed, trimmed and cut to `max` characters; undefined when empty. */
export function cleanLine(text: string, max: number): string | undefined {
  const clean = text.replace(/\s+/g, " ").trim();
  if (clean === "") return undefined;
  return [...clean].slice(0, max).join("");
}

/** Every agreement, grouped by the phase it was made in (phases in `phaseIds` order first). */
export function agreementsByPhase(doc: RunDoc | undefined, phaseIds: string[]): { phase: string; agreements: Agreement[] }[] {
  const seen = new Set<string>();
  for (const a of Object.values(doc?.agreements ?? {})) if (isObj(a)) seen.add(str(a.phase));
  const order = [...phaseIds.filter((p) => seen.has(p)), ...[...seen].filter((p) => !phaseIds.includes(p)).sort()];
  return order.map((phase) => ({ phase, agreements: agreementsOf(doc, phase) })).filter((g) => g.agreements.length > 0);
}

/** The `order` after every agreement of the board (so a new one goes last). */
export function nextAgreementOrder(doc: RunDoc | undefined): number {
  let max = 0;
  for (const a of Object.values(doc?.agreements ?? {})) {
    const o = isObj(a) ? num(a.order) : undefined;
    if (o !== undefined && o > max) max = o;
  }
  return Math.floor(max) + 1;
}

/** Adds an agreement made in the current phase (nothing before a phase has started). */
export function addAgreement(d: RunDoc, id: string, input: { text: string; owner?: string }, now: number, scalar: Scalar): boolean {
  const agreements = d.agreements;
  const phase = str(d.currentPhase);
  const text = cleanLine(input.text, MAX_AGREEMENT_CHARS);
  if (!isObj(agreements) || !phase || !text || id in agreements) return false;
  const owner = cleanLine(input.owner ?? "", MAX_OWNER_CHARS);
  agreements[id] = {
    // Collaborative text: the facilitator and a co-facilitator may fix a word at once.
    text,
    ...(owner ? { owner: scalar(owner) } : {}),
    phase: scalar(phase),
    createdAt: Math.round(now),
    order: nextAgreementOrder(d),
  };
  return true;
}

/** Changes an agreement's text (a minimal splice when `updateText` is given) and owner. */
export function editAgreement(d: RunDoc, id: string, input: { text: string; owner?: string }, scalar: Scalar, updateText?: UpdateText): boolean {
  const a = d.agreements?.[id];
  const text = cleanLine(input.text, MAX_AGREEMENT_CHARS);
  if (!isObj(a) || !text) return false;
  let changed = false;
  if (str(a.text) !== text) {
    if (updateText && typeof a.text === "string") updateText(["agreements", id, "text"], text);
    else a.text = text;
    changed = true;
  }
  const owner = cleanLine(input.owner ?? "", MAX_OWNER_CHARS);
  if (owner && str(a.owner) !== owner) {
    a.owner = scalar(owner);
    changed = true;
  } else if (!owner && "owner" in a) {
    delete a.owner;
    changed = true;
  }
  return changed;
}

export function removeAgreement(d: RunDoc, id: string): boolean {
  if (!isObj(d.agreements) || !isObj(d.agreements[id])) return false;
  delete d.agreements[id];
  return true;
}

// ---------------------------------------------------------------------------------------------
// The facilitator's flags on notes.

export type NoteFlag = "pinned" | "highlighted" | "hidden";

/** Sets a flag (`true`) or removes it (deletes the key); never touches a note that is not there. */
export function setNoteFlag(d: RunDoc, noteId: string, flag: NoteFlag, on: boolean): boolean {
  const n = (d.notes as Record<string, unknown> | undefined)?.[noteId];
  if (!isObj(n)) return false;
  if (on) {
    if (n[flag] === true) return false;
    n[flag] = true;
  } else {
    if (!(flag in n)) return false;
    delete n[flag];
  }
  return true;
}

/**
 * Hides one photo of a note from the board (`hiddenPhotos[photoId] = true`, the map created on
 * the first hide) or shows it again (deletes the key); only photos the note has. The
 * facilitator's, like the note flags.
 */
export function setPhotoHidden(d: RunDoc, noteId: string, photoId: string, hidden: boolean): boolean {
  const n = (d.notes as Record<string, unknown> | undefined)?.[noteId];
  if (!isObj(n) || !isPhotoId(photoId) || !Array.isArray(n.photos) || !n.photos.some((p) => str(p) === photoId)) return false;
  const map = n.hiddenPhotos;
  if (hidden) {
    if (isObj(map)) {
      if (map[photoId] === true) return false;
      map[photoId] = true;
    } else {
      n.hiddenPhotos = { [photoId]: true };
    }
  } else {
    if (!isObj(map) || !(photoId in map)) return false;
    delete map[photoId];
  }
  return true;
}

/** The notes a screen shows: hidden ones only when `showHidden` (the board's "show hidden"). */
export function visibleNotes(notes: Note[], showHidden: boolean): Note[] {
  return showHidden ? notes : notes.filter((n) => !n.hidden);
}

/** A column's order: pinned notes first, each part keeping the order it came in (newest first). */
export function pinnedFirst(notes: Note[]): Note[] {
  return [...notes.filter((n) => n.pinned), ...notes.filter((n) => !n.pinned)];
}

// ---------------------------------------------------------------------------------------------
// Clusters: named groups of notes (the chart paper of the paper debrief). A note is in at most
// one cluster, by its `clusterId`; a `clusterId` naming no cluster counts as none.

export interface StoredCluster {
  label?: unknown;
  order?: unknown;
  createdAt?: unknown;
}

/** The board with its debrief collections (the server creates both maps). */
export interface DebriefDoc extends RunDoc {
  clusters?: Record<string, StoredCluster | undefined>;
  children?: Record<string, { addedBy?: unknown; addedAt?: unknown } | undefined>;
}

export interface Cluster {
  id: string;
  label: string;
  order: number;
  createdAt: number;
}

export const MAX_CLUSTER_CHARS = 80;

/** The clusters in order (by `order`, then creation, then id). */
export function readClusters(doc: DebriefDoc | undefined): Cluster[] {
  const out: Cluster[] = [];
  for (const [id, c] of Object.entries(doc?.clusters ?? {})) {
    if (!isObj(c)) continue;
    out.push({ id, label: str(c.label) || "Untitled", order: num(c.order) ?? 0, createdAt: num(c.createdAt) ?? 0 });
  }
  return out.sort((a, b) => a.order - b.order || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Adds a named cluster at the end. */
export function addCluster(d: DebriefDoc, id: string, label: string, now: number): boolean {
  const clusters = d.clusters;
  const clean = cleanLine(label, MAX_CLUSTER_CHARS);
  if (!isObj(clusters) || !clean || id in clusters) return false;
  let max = 0;
  for (const c of Object.values(clusters)) {
    const o = isObj(c) ? num(c.order) : undefined;
    if (o !== undefined && o > max) max = o;
  }
  // The label is collaborative text: it may be renamed while others look.
  clusters[id] = { label: clean, order: Math.floor(max) + 1, createdAt: Math.round(now) };
  return true;
}

/** Removes a cluster; its notes go back to no cluster. */
export function removeCluster(d: DebriefDoc, id: string): boolean {
  if (!isObj(d.clusters) || !isObj(d.clusters[id])) return false;
  delete d.clusters[id];
  for (const n of Object.values((d.notes ?? {}) as Record<string, unknown>)) {
    if (isObj(n) && str(n.clusterId) === id) delete n.clusterId;
  }
  return true;
}

/** Puts a note in a cluster, or takes it out of any (`clusterId` undefined deletes the key). */
export function setNoteCluster(d: DebriefDoc, noteId: string, clusterId: string | undefined, scalar: Scalar): boolean {
  const n = (d.notes as Record<string, unknown> | undefined)?.[noteId];
  if (!isObj(n)) return false;
  if (clusterId === undefined) {
    if (!("clusterId" in n)) return false;
    delete n.clusterId;
    return true;
  }
  if (!isObj(d.clusters?.[clusterId]) || str(n.clusterId) === clusterId) return false;
  n.clusterId = scalar(clusterId);
  return true;
}

/** Each cluster with its notes (in the order given), and the notes in none. */
export function groupByCluster(clusters: Cluster[], notes: Note[]): { groups: { cluster: Cluster; notes: Note[] }[]; loose: Note[] } {
  const by = new Map(clusters.map((c) => [c.id, [] as Note[]]));
  const loose: Note[] = [];
  for (const n of notes) {
    const list = n.clusterId !== undefined ? by.get(n.clusterId) : undefined;
    (list ?? loose).push(n);
  }
  return { groups: clusters.map((c) => ({ cluster: c, notes: by.get(c.id)! })), loose };
}

// ---------------------------------------------------------------------------------------------
// Children: the lab's list of aliases or initials (never full names), keyed by the alias itself,
// which any observer may extend; a note lists the children it is about.

export const MAX_ALIAS_CHARS = 24;

/** An alias as typed: spaces collapsed, at most 24 characters; undefined when empty. */
export function cleanAlias(input: string): string | undefined {
  return cleanLine(input, MAX_ALIAS_CHARS);
}

/** The lab's aliases, sorted as people look for them (case-insensitive, then exact). */
export function readChildren(doc: DebriefDoc | undefined): string[] {
  const out = Object.entries(doc?.children ?? {})
    .filter(([alias, c]) => alias !== "" && isObj(c))
    .map(([alias]) => alias);
  return out.sort((a, b) => a.localeCompare(b, undefined, { sensitivity: "base" }) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Adds an alias to the lab's list (a key in the existing `children` map; re-adding is a no-op). */
export function addChild(d: DebriefDoc, alias: string, by: { name: string; deviceId: string }, now: number, scalar: Scalar): boolean {
  const children = d.children;
  const clean = cleanAlias(alias);
  if (!isObj(children) || !clean || isObj(children[clean])) return false;
  children[clean] = { addedBy: scalar(by.name || by.deviceId), addedAt: Math.round(now) };
  return true;
}

/** The notes about a child; every note when `alias` is undefined. */
export function notesOfChild(notes: Note[], alias: string | undefined): Note[] {
  return alias === undefined ? notes : notes.filter((n) => n.children.includes(alias));
}

/**
 * Notes by child: one group per alias of the list (in its order) and then per alias that only
 * notes name, each group's notes in the order given; a note about two children is in both.
 */
export function groupByChild(aliases: string[], notes: Note[]): { alias: string; notes: Note[] }[] {
  const by = new Map(aliases.map((a) => [a, [] as Note[]]));
  const extra: string[] = [];
  for (const n of notes) {
    for (const alias of new Set(n.children)) {
      let list = by.get(alias);
      if (!list) {
        list = [];
        by.set(alias, list);
        extra.push(alias);
      }
      list.push(n);
    }
  }
  return [...aliases, ...extra.sort((a, b) => a.localeCompare(b))].map((alias) => ({ alias, notes: by.get(alias)! }));
}

// ---------------------------------------------------------------------------------------------
// Categories, edited by the facilitator: label (collaborative text), colour, order.

export const MAX_CATEGORY_CHARS = 40;

function categoryColor(value: string): string | undefined {
  return /^#[0-9a-fA-F]{6}$/.test(value) ? value.toLowerCase() : undefined;
}

/** Changes a category's label, colour and/or order (only what is given and valid). */
export function updateCategory(
  d: DebriefDoc,
  id: string,
  change: { label?: string; color?: string; order?: number },
  updateText?: UpdateText,
): boolean {
  const c = d.categories?.[id];
  if (!isObj(c)) return false;
  let changed = false;
  const label = change.label !== undefined ? cleanLine(change.label, MAX_CATEGORY_CHARS) : undefined;
  if (label && str(c.label) !== label) {
    if (updateText && typeof c.label === "string") updateText(["categories", id, "label"], label);
    else c.label = label;
    changed = true;
  }
  const color = change.color !== undefined ? categoryColor(change.color) : undefined;
  if (color && str(c.color).toLowerCase() !== color) {
    c.color = color;
    changed = true;
  }
  if (change.order !== undefined && Number.isFinite(change.order) && num(c.order) !== change.order) {
    c.order = change.order;
    changed = true;
  }
  return changed;
}

/** Adds a category at the end. */
export function addCategory(d: DebriefDoc, id: string, label: string, color: string): boolean {
  const cats = d.categories;
  const clean = cleanLine(label, MAX_CATEGORY_CHARS);
  if (!isObj(cats) || !clean || id in cats) return false;
  let max = -1;
  for (const c of Object.values(cats)) {
    const o = isObj(c) ? num(c.order) : undefined;
    if (o !== undefined && o > max) max = o;
  }
  cats[id] = { label: clean, color: categoryColor(color) ?? "#64748b", order: Math.floor(max) + 1 };
  return true;
}

/**
 * The `order` that moves the category at `index` of `orders` (the displayed order) one step up
 * (-1) or down (+1): halfway between its new neighbours, so only that category is written.
 * Undefined when it cannot move.
 */
export function movedOrder(orders: number[], index: number, step: -1 | 1): number | undefined {
  const to = index + step;
  if (index < 0 || index >= orders.length || to < 0 || to >= orders.length) return undefined;
  const beyond = to + step;
  const near = orders[to];
  const far = beyond >= 0 && beyond < orders.length ? orders[beyond] : near + step;
  const mid = (near + far) / 2;
  // Equal orders (ties broken by label): step past the neighbour by a bit instead.
  return mid !== near ? mid : near + step * 0.5;
}
