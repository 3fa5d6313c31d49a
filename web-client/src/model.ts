// The board as one typed model (schema v3, defined in protocol/src/board.rs). `readBoard` turns
// the Automerge document into a `BoardModel` that every view renders from: no view reads the
// document or casts between shapes itself. `BOARD_FIELDS` lists every path the schema has; a test
// (model.test.ts) loads a board Rust wrote with every field set and checks that the readers here
// take every one of them, and that the document holds nothing they do not know.
//
// The parts of the schema older than v3 keep their readers and writers where they were (board.ts:
// lab, categories, notes; labrun.ts: phases, time-outs, agreements; debrief.ts: clusters,
// children); v3's picks and next steps are here. Like those modules this one does not import
// Automerge: writers take the draft of `handle.change`.

import { readCategories, readNotes, str, type BoardDoc, type Category, type Note } from "./board";
import { readClusters, readChildren, type Cluster, type DebriefDoc, type StoredCluster } from "./debrief";
import {
  currentPhaseId,
  isObj,
  num,
  readPhases,
  readTimeouts,
  type Agreement,
  type Phase,
  type RunDoc,
  type StoredAgreement,
  type Timeout,
} from "./labrun";

export { SCHEMA_VERSION } from "./board";

/** How many notes each person may pick when the facilitator has not said. */
export const DEFAULT_PICK_LIMIT = 7;
/** The most a facilitator may allow: a pick is a handful of strongest evidence, not a copy. */
export const MAX_PICK_LIMIT = 20;
export const MAX_NEXT_STEP_CHARS = 500;

/** The whole stored document, every field `unknown` until read. */
export interface StoredBoard extends RunDoc, DebriefDoc {
  lab?: Record<string, unknown>;
  clusters?: Record<string, StoredCluster | undefined>;
  agreements?: Record<string, StoredAgreement | undefined>;
  picks?: Record<string, unknown>;
  nextSteps?: Record<string, StoredNextStep | undefined>;
}

export interface StoredNextStep {
  text?: unknown;
  authorId?: unknown;
  authorName?: unknown;
  phase?: unknown;
  createdAt?: unknown;
  editedAt?: unknown;
}

export interface LabDetails {
  title: string;
  school: string;
  grade: string;
  date: string;
  problemOfPractice: string;
  mathematicalGoal: string;
  lessonTask: string;
  /** How many notes each person may pick. */
  pickLimit: number;
}

/** One person's pick of one note ("this is among my strongest evidence"). */
export interface Pick {
  authorId: string;
  noteId: string;
  /** When it was picked, ms since the epoch. */
  at: number;
}

/** A coach's next step with their own teachers; only its author edits it. */
export interface NextStep {
  id: string;
  text: string;
  authorId: string;
  authorName: string;
  /** The phase it was written in (the final debrief, usually); "" when unknown. */
  phase: string;
  createdAt: number;
  editedAt?: number;
}

export interface BoardModel {
  schemaVersion: number;
  lab: LabDetails;
  /** Display order. */
  categories: Category[];
  /** Display order. */
  phases: Phase[];
  currentPhase?: Phase;
  /** Oldest first. */
  timeouts: Timeout[];
  /** Every note with text, the hidden ones too; newest first, ties by id. */
  notes: Note[];
  clusters: Cluster[];
  /** Every agreement, in phase order, then each phase's own order. */
  agreements: Agreement[];
  /** The lab's child aliases, sorted. */
  children: string[];
  /** The picks that count: of notes that exist, each person's first `lab.pickLimit`; oldest first. */
  picks: Pick[];
  /** Oldest first. */
  nextSteps: NextStep[];
}

/**
 * Every path of schema v3: `*` is any key of a map, `[]` any element of a list. Kept in step
 * with protocol/src/board.rs (`FIELDS`) by model.test.ts.
 */
export const BOARD_FIELDS = [
  "schemaVersion",
  "lab",
  "lab.title",
  "lab.school",
  "lab.grade",
  "lab.date",
  "lab.problemOfPractice",
  "lab.mathematicalGoal",
  "lab.lessonTask",
  "lab.pickLimit",
  "phases",
  "phases.*",
  "phases.*.label",
  "phases.*.order",
  "phases.*.startedAt",
  "phases.*.endedAt",
  "currentPhase",
  "timeouts",
  "timeouts.*",
  "timeouts.*.phase",
  "timeouts.*.calledBy",
  "timeouts.*.calledById",
  "timeouts.*.startedAt",
  "timeouts.*.endedAt",
  "timeouts.*.note",
  "categories",
  "categories.*",
  "categories.*.label",
  "categories.*.color",
  "categories.*.order",
  "children",
  "children.*",
  "children.*.addedBy",
  "children.*.addedAt",
  "notes",
  "notes.*",
  "notes.*.text",
  "notes.*.category",
  "notes.*.authorName",
  "notes.*.authorId",
  "notes.*.createdAt",
  "notes.*.children",
  "notes.*.children.[]",
  "notes.*.reactions",
  "notes.*.reactions.*",
  "notes.*.phase",
  "notes.*.minute",
  "notes.*.timeoutId",
  "notes.*.pinned",
  "notes.*.highlighted",
  "notes.*.hidden",
  "notes.*.clusterId",
  "notes.*.editedAt",
  "notes.*.photos",
  "notes.*.photos.[]",
  "notes.*.hiddenPhotos",
  "notes.*.hiddenPhotos.*",
  "clusters",
  "clusters.*",
  "clusters.*.label",
  "clusters.*.order",
  "clusters.*.createdAt",
  "agreements",
  "agreements.*",
  "agreements.*.text",
  "agreements.*.owner",
  "agreements.*.phase",
  "agreements.*.createdAt",
  "agreements.*.order",
  "picks",
  "picks.*",
  "nextSteps",
  "nextSteps.*",
  "nextSteps.*.text",
  "nextSteps.*.authorId",
  "nextSteps.*.authorName",
  "nextSteps.*.phase",
  "nextSteps.*.createdAt",
  "nextSteps.*.editedAt",
] as const;

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The key of one person's pick of one note in `picks`. Author ids never hold a ":". */
export function pickKey(authorId: string, noteId: string): string {
  return `${authorId}:${noteId}`;
}

function readLabDetails(doc: StoredBoard | undefined): LabDetails {
  const lab = isObj(doc?.lab) ? doc!.lab : {};
  const limit = num(lab.pickLimit);
  return {
    title: str(lab.title),
    school: str(lab.school),
    grade: str(lab.grade),
    date: str(lab.date),
    problemOfPractice: str(lab.problemOfPractice),
    mathematicalGoal: str(lab.mathematicalGoal),
    lessonTask: str(lab.lessonTask),
    pickLimit: limit !== undefined && limit >= 1 ? Math.min(Math.floor(limit), MAX_PICK_LIMIT) : DEFAULT_PICK_LIMIT,
  };
}

function readAgreements(doc: StoredBoard | undefined, phases: Phase[]): Agreement[] {
  const rank = new Map(phases.map((p, i) => [p.id, i]));
  const out: Agreement[] = [];
  for (const [id, a] of Object.entries(doc?.agreements ?? {})) {
    if (!isObj(a)) continue;
    const text = str(a.text);
    if (text === "") continue;
    out.push({ id, text, owner: str(a.owner), phase: str(a.phase), createdAt: num(a.createdAt) ?? 0, order: num(a.order) ?? 0 });
  }
  const phaseRank = (a: Agreement) => rank.get(a.phase) ?? phases.length;
  return out.sort((a, b) => phaseRank(a) - phaseRank(b) || a.order - b.order || a.createdAt - b.createdAt || byId(a, b));
}

/**
 * The picks that count. A phone enforces its limit, but a board must read the same whatever was
 * written (an old phone, two tabs at once, a lowered limit): each person's earliest `limit` picks
 * of notes that exist count, the rest do not.
 */
function readPicks(doc: StoredBoard | undefined, noteIds: Set<string>, limit: number): Pick[] {
  const byAuthor = new Map<string, Pick[]>();
  for (const [key, value] of Object.entries(isObj(doc?.picks) ? doc!.picks : {})) {
    const cut = key.indexOf(":");
    if (cut <= 0) continue;
    const pick = { authorId: key.slice(0, cut), noteId: key.slice(cut + 1), at: num(value) ?? 0 };
    if (!noteIds.has(pick.noteId)) continue;
    const list = byAuthor.get(pick.authorId) ?? [];
    list.push(pick);
    byAuthor.set(pick.authorId, list);
  }
  const order = (a: Pick, b: Pick) =>
    a.at - b.at || (a.noteId < b.noteId ? -1 : a.noteId > b.noteId ? 1 : 0) || (a.authorId < b.authorId ? -1 : a.authorId > b.authorId ? 1 : 0);
  const out: Pick[] = [];
  for (const list of byAuthor.values()) out.push(...list.sort(order).slice(0, limit));
  return out.sort(order);
}

function readNextSteps(doc: StoredBoard | undefined): NextStep[] {
  const out: NextStep[] = [];
  for (const [id, s] of Object.entries(doc?.nextSteps ?? {})) {
    if (!isObj(s)) continue;
    const text = str(s.text);
    if (text === "") continue;
    const step: NextStep = {
      id,
      text,
      authorId: str(s.authorId),
      authorName: str(s.authorName),
      phase: str(s.phase),
      createdAt: num(s.createdAt) ?? 0,
    };
    const edited = num(s.editedAt);
    if (edited !== undefined) step.editedAt = edited;
    out.push(step);
  }
  return out.sort((a, b) => a.createdAt - b.createdAt || byId(a, b));
}

/** The whole board, read once. `doc` may be anything: what is not a board reads as empty. */
export function readBoard(doc: unknown): BoardModel {
  const d = isObj(doc) ? (doc as StoredBoard) : undefined;
  const lab = readLabDetails(d);
  const phases = readPhases(d);
  const phaseId = currentPhaseId(d);
  const notes = readNotes(d as BoardDoc | undefined);
  return {
    schemaVersion: num(d?.schemaVersion) ?? 0,
    lab,
    categories: readCategories(d),
    phases,
    currentPhase: phaseId ? phases.find((p) => p.id === phaseId) : undefined,
    timeouts: readTimeouts(d),
    notes,
    clusters: readClusters(d),
    agreements: readAgreements(d, phases),
    children: readChildren(d),
    picks: readPicks(d, new Set(notes.map((n) => n.id)), lab.pickLimit),
    nextSteps: readNextSteps(d),
  };
}

/** The label of a phase, or "" when there is none by that id. */
export function phaseLabel(model: BoardModel, phaseId: string | undefined): string {
  return (phaseId && model.phases.find((p) => p.id === phaseId)?.label) || "";
}

/** How many people picked each picked note. */
export function pickCounts(model: BoardModel): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of model.picks) counts.set(p.noteId, (counts.get(p.noteId) ?? 0) + 1);
  return counts;
}

/** The notes `authorId` has picked (that count), in the order picked. */
export function myPicks(model: BoardModel, authorId: string): string[] {
  return model.picks.filter((p) => p.authorId === authorId).map((p) => p.noteId);
}

/**
 * The picked notes, most picked first (then newest), each with its count; hidden notes are left
 * out, as everywhere on the board.
 */
export function pickedNotes(model: BoardModel): { note: Note; count: number }[] {
  const counts = pickCounts(model);
  return model.notes
    .filter((n) => !n.hidden && counts.has(n.id))
    .map((note) => ({ note, count: counts.get(note.id)! }))
    .sort((a, b) => b.count - a.count || b.note.createdAt - a.note.createdAt || byId(a.note, b.note));
}

// ---------------------------------------------------------------------------------------------
// Writers: each takes the draft of `handle.change`. None creates a missing top-level map: the
// server's upgrade does (see labrun.ts).

/**
 * Picks `noteId` for `authorId`, or takes the pick back. Refuses ("limit") a pick beyond the
 * board's limit, counted as the board counts: picks of notes that still exist.
 */
export function togglePick(d: StoredBoard, authorId: string, noteId: string, now: number): "picked" | "unpicked" | "limit" | "none" {
  const picks = d.picks;
  if (!isObj(picks) || authorId === "" || !isObj(d.notes?.[noteId])) return "none";
  const key = pickKey(authorId, noteId);
  if (key in picks) {
    delete picks[key];
    return "unpicked";
  }
  const limit = readLabDetails(d).pickLimit;
  const mine = Object.keys(picks).filter((k) => k.startsWith(`${authorId}:`) && isObj(d.notes?.[k.slice(authorId.length + 1)]));
  if (mine.length >= limit) return "limit";
  picks[key] = Math.round(now);
  return "picked";
}

/** Sets how many notes each person may pick (the facilitator's). */
export function setPickLimit(d: StoredBoard, n: number): boolean {
  if (!isObj(d.lab) || !Number.isInteger(n) || n < 1 || n > MAX_PICK_LIMIT) return false;
  if (num(d.lab.pickLimit) === n) return false;
  d.lab.pickLimit = n;
  return true;
}

type Scalar = (s: string) => unknown;

/** A next step's text, trimmed, or undefined when empty or too long. */
export function cleanNextStep(text: string): string | undefined {
  const t = text.trim();
  return t !== "" && t.length <= MAX_NEXT_STEP_CHARS ? t : undefined;
}

/** Adds a coach's next step, written in the current phase. */
export function addNextStep(
  d: StoredBoard,
  id: string,
  input: { text: string; authorId: string; authorName: string },
  now: number,
  scalar: Scalar,
): boolean {
  const text = cleanNextStep(input.text);
  if (!isObj(d.nextSteps) || text === undefined || input.authorId === "" || id in d.nextSteps) return false;
  d.nextSteps[id] = {
    text: scalar(text),
    authorId: scalar(input.authorId),
    authorName: scalar(input.authorName),
    phase: scalar(currentPhaseId(d) ?? ""),
    createdAt: Math.round(now),
  };
  return true;
}

/** Replaces the text of one's own next step. */
export function editNextStep(d: StoredBoard, id: string, authorId: string, text: string, now: number, scalar: Scalar): boolean {
  const step = d.nextSteps?.[id];
  const clean = cleanNextStep(text);
  if (!isObj(step) || str(step.authorId) !== authorId || clean === undefined || str(step.text) === clean) return false;
  step.text = scalar(clean);
  step.editedAt = Math.round(now);
  return true;
}

/** Deletes one's own next step. */
export function removeNextStep(d: StoredBoard, id: string, authorId: string): boolean {
  const step = d.nextSteps?.[id];
  if (!isObj(step) || str(step.authorId) !== authorId) return false;
  delete d.nextSteps![id];
  return true;
}
