// What the debrief looks at, as pure functions over the board model: Lesson 1 beside Lesson 2
// (each lesson's notes per category, its time-outs and counts, and the agreements of the debrief
// between the two), the picked notes ordered by how many people picked them, and the next steps
// grouped by coach. The board's views (board/compare.ts, board/picks.ts, board/nextsteps.ts)
// render these; nothing here touches the DOM or Automerge.

import { OTHER_CATEGORY, type Category, type Note } from "./board";
import { isLesson, minuteOf, type Agreement, type Phase, type Timeout } from "./labrun";
import type { BoardModel, NextStep, Pick as NotePick } from "./model";

/** The parts of the board model the comparison reads. */
export type CompareSource = Pick<BoardModel, "categories" | "phases" | "currentPhase" | "timeouts" | "notes" | "agreements">;

/** Where a lesson is: not started yet, running now, or over. */
export type LessonState = "not-taught" | "in-progress" | "taught";

export interface LessonTimeout {
  id: string;
  calledBy: string;
  startedAt: number;
  endedAt?: number;
  /** Whole minutes into the lesson when it was called (unknown when the lesson has no start). */
  minute?: number;
  /** How long it lasted; undefined while it runs. */
  durationMs?: number;
  /** The notes written during it (linked to it, or written in its time without a link). */
  noteCount: number;
  note: string;
}

export interface LessonSide {
  /** The lesson's phase; undefined when the lab has no such lesson. */
  phase?: Phase;
  state: LessonState;
  /** Every shown note of the lesson. */
  noteCount: number;
  timeouts: LessonTimeout[];
}

/** One category: what was seen in each lesson, oldest first. */
export interface CompareRow {
  category: Category;
  first: Note[];
  second: Note[];
}

export interface Comparison {
  first: LessonSide;
  second: LessonSide;
  /** The phases between the two lessons (usually Debrief 1), in order. */
  between: Phase[];
  /** The agreements made in those phases: what the group chose to change for the second lesson. */
  agreements: Agreement[];
  /** One row per category in display order, and "Other" last when a note has an unknown category. */
  rows: CompareRow[];
}

const byTimeThenId = (a: { createdAt: number; id: string }, b: { createdAt: number; id: string }) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The lab's lessons in phase order (phases whose id starts with "lesson"). */
export function lessonsOf(phases: Phase[]): Phase[] {
  return [...phases].sort((a, b) => a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).filter((p) => isLesson(p.id));
}

/**
 * The two lessons to compare, in phase order. The second is the last lesson that has started
 * and the first the lesson before it; until a second lesson has started, the first two lessons
 * (the second may be missing on a lab planned with one).
 */
export function lessonPair(phases: Phase[]): [Phase | undefined, Phase | undefined] {
  const lessons = lessonsOf(phases);
  let last = -1;
  lessons.forEach((p, i) => {
    if (p.startedAt !== undefined) last = i;
  });
  if (last >= 1) return [lessons[last - 1], lessons[last]];
  return [lessons[0], lessons[1]];
}

export function lessonState(phase: Phase | undefined, current: Phase | undefined): LessonState {
  if (!phase || phase.startedAt === undefined) return "not-taught";
  return current?.id === phase.id ? "in-progress" : "taught";
}

/** The time-outs of a lesson, oldest first, each with the number of shown notes written in it. */
export function lessonTimeouts(phase: Phase, timeouts: Timeout[], notes: Note[]): LessonTimeout[] {
  const inPhase = notes.filter((n) => n.phase === phase.id);
  return timeouts
    .filter((t) => t.phase === phase.id)
    .sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((t) => {
      const noteCount = inPhase.filter(
        (n) => n.timeoutId === t.id || (n.timeoutId === undefined && n.createdAt >= t.startedAt && (t.endedAt === undefined || n.createdAt <= t.endedAt)),
      ).length;
      const out: LessonTimeout = { id: t.id, calledBy: t.calledBy, startedAt: t.startedAt, noteCount, note: t.note };
      if (t.endedAt !== undefined) {
        out.endedAt = t.endedAt;
        out.durationMs = Math.max(0, t.endedAt - t.startedAt);
      }
      const minute = minuteOf(t.startedAt, phase.startedAt);
      if (minute !== undefined) out.minute = minute;
      return out;
    });
}

function side(phase: Phase | undefined, src: CompareSource, notes: Note[]): LessonSide {
  const out: LessonSide = {
    state: lessonState(phase, src.currentPhase),
    noteCount: phase ? notes.filter((n) => n.phase === phase.id).length : 0,
    timeouts: phase ? lessonTimeouts(phase, src.timeouts, notes) : [],
  };
  if (phase) out.phase = phase;
  return out;
}

/**
 * Lesson 1 beside Lesson 2. Hidden notes are left out unless `showHidden`; `pair` names the two
 * lessons when the facilitator chose them (ids of lessons of the lab), else `lessonPair` decides.
 */
export function compareLessons(src: CompareSource, opts: { showHidden?: boolean; pair?: [string, string] } = {}): Comparison {
  const notes = (opts.showHidden ? src.notes : src.notes.filter((n) => !n.hidden)).slice().sort(byTimeThenId);
  const lessons = lessonsOf(src.phases);
  const chosen = opts.pair?.map((id) => lessons.find((p) => p.id === id));
  const [a, b] = chosen && chosen[0] && chosen[1] && chosen[0] !== chosen[1] ? (chosen as [Phase, Phase]) : lessonPair(src.phases);
  const ordered = [...src.phases].sort((x, y) => x.order - y.order || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const ia = a ? ordered.findIndex((p) => p.id === a.id) : -1;
  const ib = b ? ordered.findIndex((p) => p.id === b.id) : -1;
  const between = ia >= 0 && ib > ia ? ordered.slice(ia + 1, ib) : [];
  const betweenIds = new Set(between.map((p) => p.id));
  const agreements = src.agreements
    .filter((g) => betweenIds.has(g.phase))
    .sort((x, y) => ordered.findIndex((p) => p.id === x.phase) - ordered.findIndex((p) => p.id === y.phase) || x.order - y.order || x.createdAt - y.createdAt);

  const known = new Set(src.categories.map((c) => c.id));
  const rowOf = (c: Category): CompareRow => ({
    category: c,
    first: a ? notes.filter((n) => n.phase === a.id && (c === OTHER_CATEGORY ? !known.has(n.category) : n.category === c.id)) : [],
    second: b ? notes.filter((n) => n.phase === b.id && (c === OTHER_CATEGORY ? !known.has(n.category) : n.category === c.id)) : [],
  });
  const rows = src.categories.map(rowOf);
  const other = rowOf(OTHER_CATEGORY);
  if (other.first.length + other.second.length > 0) rows.push(other);
  return { first: side(a, src, notes), second: side(b, src, notes), between, agreements, rows };
}

/** `2 min 05 s`, `45 s`: how long a time-out lasted, said the way people say it. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  if (m === 0) return `${s} s`;
  return `${m} min ${String(s % 60).padStart(2, "0")} s`;
}

/** A count with its noun: `1 note`, `3 notes`, `0 time-outs`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// ---------------------------------------------------------------------------------------------
// Picks: each person's strongest pieces of evidence (the sticky notes of the paper debrief).

export interface PickedNote {
  note: Note;
  /** How many people picked it. */
  count: number;
  /** When it was first picked. */
  firstAt: number;
}

/**
 * The picked notes, most picked first; a tie goes to the note picked first (then the older
 * note), so a new pick moves a card past those it now outnumbers and nothing else reshuffles on
 * the projector. Hidden notes are left out unless `showHidden` (the facilitator's "show hidden").
 * `picks` are the model's: only those that count.
 */
export function rankPicks(notes: Note[], picks: readonly NotePick[], opts: { showHidden?: boolean } = {}): PickedNote[] {
  const byNote = new Map<string, { people: Set<string>; firstAt: number }>();
  for (const p of picks) {
    let e = byNote.get(p.noteId);
    if (!e) {
      e = { people: new Set(), firstAt: p.at };
      byNote.set(p.noteId, e);
    }
    e.people.add(p.authorId);
    e.firstAt = Math.min(e.firstAt, p.at);
  }
  const out: PickedNote[] = [];
  for (const note of notes) {
    const e = byNote.get(note.id);
    if (!e || (note.hidden && !opts.showHidden)) continue;
    out.push({ note, count: e.people.size, firstAt: e.firstAt });
  }
  return out.sort((a, b) => b.count - a.count || a.firstAt - b.firstAt || byTimeThenId(a.note, b.note));
}

/** How many people have picked, and how many picks there are in all. */
export function pickTotals(picks: readonly NotePick[]): { people: number; picks: number } {
  return { people: new Set(picks.map((p) => p.authorId)).size, picks: picks.length };
}

// ---------------------------------------------------------------------------------------------
// Next steps: what each coach will do with their own teachers.

/** What grouping reads of a next step (a model `NextStep` is one). */
export type NextStepLike = Pick<NextStep, "id" | "text" | "authorId" | "authorName" | "createdAt">;

export interface CoachSteps<S extends NextStepLike = NextStep> {
  authorId: string;
  /** The name on the coach's latest next step (a coach may rename between sessions). */
  name: string;
  steps: S[];
}

/** Next steps grouped by coach, coaches by name (then id), each coach's steps oldest first. */
export function nextStepsByCoach<S extends NextStepLike>(steps: readonly S[]): CoachSteps<S>[] {
  const by = new Map<string, S[]>();
  for (const s of steps) {
    if (s.text.trim() === "") continue;
    let list = by.get(s.authorId);
    if (!list) {
      list = [];
      by.set(s.authorId, list);
    }
    list.push(s);
  }
  const out: CoachSteps<S>[] = [];
  for (const [authorId, list] of by) {
    list.sort(byTimeThenId);
    const name = [...list].reverse().find((s) => s.authorName.trim() !== "")?.authorName.trim() ?? "";
    out.push({ authorId, name: name || "Someone", steps: list });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || (a.authorId < b.authorId ? -1 : a.authorId > b.authorId ? 1 : 0));
}
