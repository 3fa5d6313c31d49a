// The lab routine on the board (schema v2, see protocol/src/board.rs): phases, the current phase,
// teacher time-outs, reactions ("I saw that too"), the lesson timeline and agreements.
//
// Readers treat every field as optional (an old board, or one the server has not upgraded yet,
// has none of these). Writers never create a missing top-level map (`phases`, `timeouts`,
// `agreements`, `notes`): two clients creating the same map at once would lose one map's
// contents, so they wait for the server's upgrade to create it. Like board.ts, no Automerge
// import: writers take the draft of `handle.change` and a `scalar` wrapper for strings.

import { str, type BoardDoc, type Note, type NoteRun } from "./board";

export type { NoteRun } from "./board";

export interface StoredPhase {
  label?: unknown;
  order?: unknown;
  startedAt?: unknown;
  endedAt?: unknown;
}

export interface StoredTimeout {
  phase?: unknown;
  calledBy?: unknown;
  calledById?: unknown;
  startedAt?: unknown;
  endedAt?: unknown;
  note?: unknown;
}

export interface StoredAgreement {
  text?: unknown;
  owner?: unknown;
  phase?: unknown;
  createdAt?: unknown;
  order?: unknown;
}

/** The v2 parts of the board document. */
export interface RunDoc extends BoardDoc {
  phases?: Record<string, StoredPhase | undefined>;
  currentPhase?: unknown;
  timeouts?: Record<string, StoredTimeout | undefined>;
  agreements?: Record<string, StoredAgreement | undefined>;
}

export interface Phase {
  id: string;
  label: string;
  order: number;
  startedAt?: number;
  endedAt?: number;
}

export interface Timeout {
  id: string;
  phase: string;
  calledBy: string;
  calledById: string;
  startedAt: number;
  endedAt?: number;
  note: string;
}

export interface Agreement {
  id: string;
  text: string;
  owner: string;
  phase: string;
  createdAt: number;
  order: number;
}

/** A finite number from a document value (Automerge may hand back a bigint). */
export function num(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "bigint") return Number(value);
  return undefined;
}

/** Whether a document value is a map (or list) to read fields from. */
export function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object";
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Any phase whose id starts with "lesson" is a lesson (a time-out can be called in it). */
export function isLesson(phaseId: string | undefined): boolean {
  return !!phaseId && phaseId.startsWith("lesson");
}

/** The board's phases in order (by `order`, then id). Empty on a board without `phases`. */
export function readPhases(doc: RunDoc | undefined): Phase[] {
  const out: Phase[] = [];
  for (const [id, p] of Object.entries(doc?.phases ?? {})) {
    if (!isObj(p)) continue;
    out.push({
      id,
      label: str(p.label) || id,
      order: num(p.order) ?? 0,
      startedAt: num(p.startedAt),
      endedAt: num(p.endedAt),
    });
  }
  return out.sort((a, b) => a.order - b.order || byId(a, b));
}

/** Whether the board has the v2 maps a client may write into (the server creates them). */
export function hasRunMaps(doc: RunDoc | undefined): boolean {
  return isObj(doc?.phases) && isObj(doc?.timeouts) && isObj(doc?.notes);
}

/** The current phase id, or undefined before the facilitator starts one (or if it is unknown). */
export function currentPhaseId(doc: RunDoc | undefined): string | undefined {
  const id = str(doc?.currentPhase);
  return id !== "" ? id : undefined;
}

/** The current phase, when it is one of the board's phases. */
export function currentPhase(doc: RunDoc | undefined): Phase | undefined {
  const id = currentPhaseId(doc);
  return id ? readPhases(doc).find((p) => p.id === id) : undefined;
}

/** The phase after the current one (the first phase when none is current), if any. */
export function nextPhase(doc: RunDoc | undefined): Phase | undefined {
  const phases = readPhases(doc);
  const id = currentPhaseId(doc);
  if (!id) return phases[0];
  const i = phases.findIndex((p) => p.id === id);
  return i < 0 ? undefined : phases[i + 1];
}

/** Every time-out, oldest first. */
export function readTimeouts(doc: RunDoc | undefined): Timeout[] {
  const out: Timeout[] = [];
  for (const [id, t] of Object.entries(doc?.timeouts ?? {})) {
    if (!isObj(t)) continue;
    const startedAt = num(t.startedAt);
    if (startedAt === undefined) continue;
    out.push({
      id,
      phase: str(t.phase),
      calledBy: str(t.calledBy),
      calledById: str(t.calledById),
      startedAt,
      endedAt: num(t.endedAt),
      note: str(t.note),
    });
  }
  return out.sort((a, b) => a.startedAt - b.startedAt || byId(a, b));
}

/**
 * The running time-outs of the current phase (no `endedAt`), oldest first. Two people may call
 * one at the same moment; the oldest is "the" time-out, and ending ends them all.
 */
export function runningTimeouts(doc: RunDoc | undefined): Timeout[] {
  const phase = currentPhaseId(doc);
  return readTimeouts(doc).filter((t) => t.endedAt === undefined && (!phase || t.phase === phase));
}

export function runningTimeout(doc: RunDoc | undefined): Timeout | undefined {
  return runningTimeouts(doc)[0];
}

/** Whether this device may end a time-out: its caller, or a facilitator. */
export function canEndTimeout(t: Timeout, deviceId: string, role: string): boolean {
  return role === "facilitator" || t.calledById === deviceId;
}

/** Whole minutes from `startedAt` to `at` (0 for anything before the start). */
export function minuteOf(at: number, startedAt: number | undefined): number | undefined {
  if (startedAt === undefined || !Number.isFinite(at)) return undefined;
  return Math.max(0, Math.floor((at - startedAt) / 60_000));
}

/** `mm:ss` of a duration (negative counts as 0; past an hour the minutes keep counting). */
export function formatTimer(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** How many people saw it too, and whether this device is one of them. */
export function reactionState(run: NoteRun, deviceId: string): { count: number; mine: boolean; possible: boolean } {
  const list = run.reactions ?? [];
  return { count: list.length, mine: list.includes(deviceId), possible: run.reactions !== undefined };
}

/** The fields a new note gets from the run: phase, minute into it, the running time-out. */
export function runFieldsForNewNote(doc: RunDoc | undefined, now: number): { phase?: string; minute?: number; timeoutId?: string } {
  const out: { phase?: string; minute?: number; timeoutId?: string } = {};
  const phaseId = currentPhaseId(doc);
  if (!phaseId) return out;
  out.phase = phaseId;
  const minute = minuteOf(now, currentPhase(doc)?.startedAt);
  if (minute !== undefined) out.minute = minute;
  const t = runningTimeout(doc);
  if (t) out.timeoutId = t.id;
  return out;
}

export interface TimelineSlot {
  /** Whole minutes into the phase; undefined for notes whose minute is not known. */
  minute: number | undefined;
  notes: Note[];
  /** Time-outs that started in this minute. */
  timeouts: Timeout[];
}

/**
 * The phase minute by minute: its notes grouped by `minute` (oldest minute first, each minute's
 * notes oldest first), with the time-outs that started in each minute. Notes of the phase without
 * a minute come last.
 */
export function timeline(doc: RunDoc | undefined, phaseId: string, notes: Note[]): TimelineSlot[] {
  const phase = readPhases(doc).find((p) => p.id === phaseId);
  const slots = new Map<number | undefined, TimelineSlot>();
  const slot = (minute: number | undefined) => {
    let s = slots.get(minute);
    if (!s) {
      s = { minute, notes: [], timeouts: [] };
      slots.set(minute, s);
    }
    return s;
  };
  for (const n of notes) {
    if (n.phase !== phaseId) continue;
    slot(n.minute ?? minuteOf(n.createdAt, phase?.startedAt)).notes.push(n);
  }
  for (const t of readTimeouts(doc)) {
    if (t.phase !== phaseId) continue;
    slot(minuteOf(t.startedAt, phase?.startedAt)).timeouts.push(t);
  }
  for (const s of slots.values()) s.notes.sort((a, b) => a.createdAt - b.createdAt || byId(a, b));
  return [...slots.values()].sort((a, b) => (a.minute ?? Infinity) - (b.minute ?? Infinity));
}

/** The agreements made in `phaseId`, in order (by `order`, then creation). */
export function agreementsOf(doc: RunDoc | undefined, phaseId: string): Agreement[] {
  const out: Agreement[] = [];
  for (const [id, a] of Object.entries(doc?.agreements ?? {})) {
    if (!isObj(a)) continue;
    const text = str(a.text);
    if (text === "" || str(a.phase) !== phaseId) continue;
    out.push({ id, text, owner: str(a.owner), phase: phaseId, createdAt: num(a.createdAt) ?? 0, order: num(a.order) ?? 0 });
  }
  return out.sort((a, b) => a.order - b.order || a.createdAt - b.createdAt || byId(a, b));
}

// ---------------------------------------------------------------------------------------------
// Writers: each takes the draft of `handle.change` and returns whether it changed anything.

type Scalar = (s: string) => unknown;

/**
 * Makes `phaseId` the current phase: sets its `startedAt` if unset, the previous current phase's
 * `endedAt`, and ends the previous phase's running time-outs.
 */
export function setCurrentPhase(d: RunDoc, phaseId: string, now: number, scalar: Scalar): boolean {
  const phases = d.phases;
  if (!isObj(phases) || !isObj(phases[phaseId])) return false;
  const prev = currentPhaseId(d);
  if (prev === phaseId) return false;
  const at = Math.round(now);
  if (prev && isObj(phases[prev])) {
    phases[prev]!.endedAt = at;
    for (const t of Object.values(d.timeouts ?? {})) {
      if (isObj(t) && str(t.phase) === prev && num(t.endedAt) === undefined) t.endedAt = at;
    }
  }
  const next = phases[phaseId]!;
  if (num(next.startedAt) === undefined) next.startedAt = at;
  d.currentPhase = scalar(phaseId);
  return true;
}

/** Calls a time-out in the current lesson. */
export function callTimeout(d: RunDoc, id: string, by: { name: string; deviceId: string }, now: number, scalar: Scalar): boolean {
  const phase = currentPhaseId(d);
  if (!isObj(d.timeouts) || !isLesson(phase) || runningTimeout(d)) return false;
  d.timeouts[id] = {
    phase: scalar(phase!),
    calledBy: scalar(by.name),
    calledById: scalar(by.deviceId),
    startedAt: Math.round(now),
  };
  return true;
}

/**
 * Takes back a time-out its caller has just called (the phone offers this for a few seconds):
 * deletes it, as if never called. Only the caller's own, and only while it runs.
 */
export function undoTimeout(d: RunDoc, timeoutId: string, deviceId: string): boolean {
  const t = d.timeouts?.[timeoutId];
  if (!isObj(t) || deviceId === "" || str(t.calledById) !== deviceId || num(t.endedAt) !== undefined) return false;
  delete d.timeouts![timeoutId];
  return true;
}

/** Ends every running time-out of the current phase. */
export function endTimeouts(d: RunDoc, now: number): boolean {
  const ids = runningTimeouts(d).map((t) => t.id);
  for (const id of ids) d.timeouts![id]!.endedAt = Math.round(now);
  return ids.length > 0;
}

interface DraftNote {
  authorId?: unknown;
  text?: unknown;
  editedAt?: unknown;
  reactions?: unknown;
}

function draftNote(d: RunDoc, id: string): DraftNote | undefined {
  const n = (d.notes as Record<string, unknown> | undefined)?.[id];
  return isObj(n) ? (n as DraftNote) : undefined;
}

/** Sets or removes this device's "I saw that too" on a note (never creates `reactions`). */
export function toggleReaction(d: RunDoc, noteId: string, deviceId: string, now: number): boolean {
  const reactions = draftNote(d, noteId)?.reactions;
  if (!isObj(reactions)) return false;
  if (deviceId in reactions) delete reactions[deviceId];
  else reactions[deviceId] = Math.round(now);
  return true;
}

/** Replaces the text of the author's own note. */
export function editNote(d: RunDoc, noteId: string, authorId: string, text: string, now: number, scalar: Scalar): boolean {
  const n = draftNote(d, noteId);
  if (!n || str(n.authorId) !== authorId || text === "") return false;
  n.text = scalar(text);
  n.editedAt = Math.round(now);
  return true;
}

/** Deletes the author's own note. */
export function deleteNote(d: RunDoc, noteId: string, authorId: string): boolean {
  const n = draftNote(d, noteId);
  if (!n || str(n.authorId) !== authorId) return false;
  delete (d.notes as Record<string, unknown>)[noteId];
  return true;
}
