import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { buildNote, readNotes } from "./board";
import {
  agreementsOf,
  callTimeout,
  canEndTimeout,
  currentPhase,
  currentPhaseId,
  deleteNote,
  editNote,
  endTimeouts,
  undoTimeout,
  formatTimer,
  hasRunMaps,
  isLesson,
  minuteOf,
  nextPhase,
  reactionState,
  readPhases,
  runFieldsForNewNote,
  runningTimeout,
  setCurrentPhase,
  timeline,
  toggleReaction,
  type RunDoc,
} from "./labrun";

const scalar = (s: string) => new A.ImmutableString(s);
const T0 = 1_800_000_000_000;
const MIN = 60_000;

/** A v2 board as the server creates (or upgrades) it. */
function v2Board(): A.Doc<RunDoc> {
  return A.change(A.init<RunDoc>(), (d) => {
    d.schemaVersion = 2;
    d.categories = { strategies: { label: "Strategies", color: "#16a34a", order: 0 } };
    d.notes = {};
    d.phases = {
      "lesson-2": { label: "Lesson 2", order: 3 },
      plan: { label: "Plan", order: 0 },
      "lesson-1": { label: "Lesson 1", order: 1 },
      "debrief-1": { label: "Debrief 1", order: 2 },
      "final-debrief": { label: "Final debrief", order: 4 },
    };
    d.timeouts = {};
    d.agreements = {};
  });
}

function v1Board(): A.Doc<RunDoc> {
  return A.change(A.init<RunDoc>(), (d) => {
    d.schemaVersion = 1;
    d.notes = {};
  });
}

const change = (doc: A.Doc<RunDoc>, fn: (d: RunDoc) => void) => A.change(doc, fn);
/** Another device's copy (its own actor). */
const fork = (doc: A.Doc<RunDoc>) => A.merge(A.init<RunDoc>(), A.clone(doc));

function addNote(doc: A.Doc<RunDoc>, id: string, authorId: string, createdAt: number, extra: Record<string, unknown> = {}) {
  return change(doc, (d) => {
    (d.notes as Record<string, unknown>)[id] = buildNote(
      { text: `note ${id}`, category: "strategies", authorName: authorId, authorId, createdAt, ...extra },
      scalar,
    );
  });
}

describe("phases", () => {
  it("reads phases in order and knows lessons", () => {
    const doc = v2Board();
    expect(readPhases(doc).map((p) => p.id)).toEqual(["plan", "lesson-1", "debrief-1", "lesson-2", "final-debrief"]);
    expect(readPhases(doc)[1].label).toBe("Lesson 1");
    expect(isLesson("lesson-1")).toBe(true);
    expect(isLesson("lesson-2")).toBe(true);
    expect(isLesson("debrief-1")).toBe(false);
    expect(isLesson(undefined)).toBe(false);
  });

  it("reads an old board without phases as having none, and writes nothing to it", () => {
    let doc = v1Board();
    expect(readPhases(doc)).toEqual([]);
    expect(currentPhase(doc)).toBeUndefined();
    expect(nextPhase(doc)).toBeUndefined();
    expect(hasRunMaps(doc)).toBe(false);
    expect(hasRunMaps(v2Board())).toBe(true);
    doc = change(doc, (d) => {
      expect(setCurrentPhase(d, "plan", T0, scalar)).toBe(false);
      expect(callTimeout(d, "t", { name: "Ana", deviceId: "a" }, T0, scalar)).toBe(false);
    });
    expect(Object.keys(doc).sort()).toEqual(["notes", "schemaVersion"]);
  });

  it("starts phases: startedAt once, endedAt of the previous one, next phase", () => {
    let doc = v2Board();
    expect(nextPhase(doc)?.id).toBe("plan");
    doc = change(doc, (d) => void setCurrentPhase(d, "plan", T0, scalar));
    expect(currentPhaseId(doc)).toBe("plan");
    expect(nextPhase(doc)?.id).toBe("lesson-1");
    doc = change(doc, (d) => void setCurrentPhase(d, "lesson-1", T0 + 60 * MIN, scalar));
    const [plan, lesson1] = readPhases(doc);
    expect(plan).toMatchObject({ startedAt: T0, endedAt: T0 + 60 * MIN });
    expect(lesson1).toMatchObject({ startedAt: T0 + 60 * MIN, endedAt: undefined });
    // Going back keeps the first start.
    doc = change(doc, (d) => void setCurrentPhase(d, "plan", T0 + 61 * MIN, scalar));
    expect(readPhases(doc)[0].startedAt).toBe(T0);
    expect(readPhases(doc)[1].endedAt).toBe(T0 + 61 * MIN);
    // Unknown phases are refused.
    doc = change(doc, (d) => expect(setCurrentPhase(d, "nope", T0, scalar)).toBe(false));
    doc = change(doc, (d) => void setCurrentPhase(d, "final-debrief", T0 + 200 * MIN, scalar));
    expect(nextPhase(doc)).toBeUndefined();
  });
});

describe("time-outs", () => {
  it("can be called only during a lesson, once at a time, and ended by the caller or a facilitator", () => {
    let doc = change(v2Board(), (d) => void setCurrentPhase(d, "plan", T0, scalar));
    doc = change(doc, (d) => expect(callTimeout(d, "t0", { name: "Ana", deviceId: "a" }, T0, scalar)).toBe(false));
    doc = change(doc, (d) => void setCurrentPhase(d, "lesson-1", T0, scalar));
    doc = change(doc, (d) => expect(callTimeout(d, "t1", { name: "Ana", deviceId: "a" }, T0 + 5 * MIN, scalar)).toBe(true));
    const t = runningTimeout(doc)!;
    expect(t).toMatchObject({ id: "t1", phase: "lesson-1", calledBy: "Ana", calledById: "a", startedAt: T0 + 5 * MIN });
    expect(canEndTimeout(t, "a", "observer")).toBe(true);
    expect(canEndTimeout(t, "b", "observer")).toBe(false);
    expect(canEndTimeout(t, "b", "facilitator")).toBe(true);
    doc = change(doc, (d) => expect(callTimeout(d, "t2", { name: "Ben", deviceId: "b" }, T0, scalar)).toBe(false));
    doc = change(doc, (d) => void endTimeouts(d, T0 + 7 * MIN));
    expect(runningTimeout(doc)).toBeUndefined();
    expect((A.toJS(doc).timeouts!.t1 as { endedAt: number }).endedAt).toBe(T0 + 7 * MIN);
  });

  it("two called at once: the oldest shows, ending ends both; a new phase ends them too", () => {
    const base = change(v2Board(), (d) => void setCurrentPhase(d, "lesson-1", T0, scalar));
    const a = change(fork(base), (d) => void callTimeout(d, "ta", { name: "Ana", deviceId: "a" }, T0 + 2000, scalar));
    const b = change(fork(base), (d) => void callTimeout(d, "tb", { name: "Ben", deviceId: "b" }, T0 + 1000, scalar));
    let doc = A.merge(fork(a), b);
    expect(runningTimeout(doc)?.id).toBe("tb");
    let ended = change(fork(doc), (d) => void endTimeouts(d, T0 + MIN));
    expect(runningTimeout(ended)).toBeUndefined();
    ended = change(fork(doc), (d) => void setCurrentPhase(d, "debrief-1", T0 + MIN, scalar));
    expect(Object.values(A.toJS(ended).timeouts!).map((t) => t!.endedAt)).toEqual([T0 + MIN, T0 + MIN]);
    doc = change(ended, (d) => void setCurrentPhase(d, "lesson-2", T0 + 9 * MIN, scalar));
    expect(runningTimeout(doc)).toBeUndefined();
  });

  it("can be undone by its caller only: it is deleted, as if never called", () => {
    let doc = change(v2Board(), (d) => void setCurrentPhase(d, "lesson-1", T0, scalar));
    doc = change(doc, (d) => void callTimeout(d, "t1", { name: "Ana", deviceId: "a" }, T0 + MIN, scalar));
    doc = change(doc, (d) => expect(undoTimeout(d, "t1", "b")).toBe(false));
    expect(runningTimeout(doc)?.id).toBe("t1");
    doc = change(doc, (d) => expect(undoTimeout(d, "t1", "a")).toBe(true));
    expect(runningTimeout(doc)).toBeUndefined();
    expect(Object.keys(A.toJS(doc).timeouts!)).toEqual([]);
    doc = change(doc, (d) => expect(undoTimeout(d, "t1", "a")).toBe(false));
    // A new one can be called at once.
    doc = change(doc, (d) => expect(callTimeout(d, "t2", { name: "Ana", deviceId: "a" }, T0 + MIN, scalar)).toBe(true));
  });

  it("formats a running timer as mm:ss", () => {
    expect(formatTimer(0)).toBe("00:00");
    expect(formatTimer(65_400)).toBe("01:05");
    expect(formatTimer(-5)).toBe("00:00");
    expect(formatTimer(3_600_000)).toBe("60:00");
  });
});

describe("notes in the run", () => {
  it("computes whole minutes into a phase", () => {
    expect(minuteOf(T0 + 59_999, T0)).toBe(0);
    expect(minuteOf(T0 + 60_000, T0)).toBe(1);
    expect(minuteOf(T0 + 14.5 * MIN, T0)).toBe(14);
    expect(minuteOf(T0 - 1000, T0)).toBe(0);
    expect(minuteOf(T0, undefined)).toBeUndefined();
  });

  it("gives a new note its phase, minute and running time-out", () => {
    let doc = v2Board();
    expect(runFieldsForNewNote(doc, T0)).toEqual({});
    doc = change(doc, (d) => void setCurrentPhase(d, "lesson-1", T0, scalar));
    expect(runFieldsForNewNote(doc, T0 + 3.2 * MIN)).toEqual({ phase: "lesson-1", minute: 3 });
    doc = change(doc, (d) => void callTimeout(d, "t1", { name: "Ana", deviceId: "a" }, T0 + 4 * MIN, scalar));
    expect(runFieldsForNewNote(doc, T0 + 4.5 * MIN)).toEqual({ phase: "lesson-1", minute: 4, timeoutId: "t1" });
    doc = addNote(doc, "n1", "me", T0 + 4.5 * MIN, runFieldsForNewNote(doc, T0 + 4.5 * MIN));
    const raw = A.toJS(doc).notes!.n1 as Record<string, unknown>;
    expect(raw.reactions).toEqual({});
    expect(raw.phase).toBeInstanceOf(A.ImmutableString);
    expect(readNotes(doc)[0]).toMatchObject({ phase: "lesson-1", minute: 4, timeoutId: "t1", reactions: [] });
  });

  it("toggles reactions per device; concurrent reactions of two devices both count", () => {
    let doc = addNote(v2Board(), "n1", "author", T0);
    const a = change(fork(doc), (d) => void toggleReaction(d, "n1", "dev-a", T0));
    const b = change(fork(doc), (d) => void toggleReaction(d, "n1", "dev-b", T0));
    doc = A.merge(fork(a), b);
    const note = readNotes(doc)[0];
    expect(reactionState(note, "dev-a")).toEqual({ count: 2, mine: true, possible: true });
    expect(reactionState(note, "dev-c")).toEqual({ count: 2, mine: false, possible: true });
    doc = change(doc, (d) => void toggleReaction(d, "n1", "dev-a", T0));
    expect(reactionState(readNotes(doc)[0], "dev-a")).toEqual({ count: 1, mine: false, possible: true });
  });

  it("never creates a reactions map on an old note", () => {
    let doc = change(v2Board(), (d) => {
      (d.notes as Record<string, unknown>).old = { text: "old", authorId: "x" };
    });
    expect(reactionState(readNotes(doc)[0], "a")).toEqual({ count: 0, mine: false, possible: false });
    doc = change(doc, (d) => expect(toggleReaction(d, "old", "a", T0)).toBe(false));
    expect(A.toJS(doc).notes!.old).toEqual({ text: "old", authorId: "x" });
  });

  it("lets only the author edit or delete a note", () => {
    let doc = addNote(v2Board(), "n1", "me", T0);
    doc = change(doc, (d) => expect(editNote(d, "n1", "other", "hijack", T0, scalar)).toBe(false));
    doc = change(doc, (d) => expect(deleteNote(d, "n1", "other")).toBe(false));
    doc = change(doc, (d) => expect(editNote(d, "n1", "me", "better words", T0 + 5000, scalar)).toBe(true));
    expect(readNotes(doc)[0]).toMatchObject({ text: "better words", editedAt: T0 + 5000 });
    doc = change(doc, (d) => expect(deleteNote(d, "n1", "me")).toBe(true));
    expect(readNotes(doc)).toEqual([]);
  });
});

describe("timeline and agreements", () => {
  it("groups a phase's notes by minute, with its time-outs marked", () => {
    let doc = change(v2Board(), (d) => void setCurrentPhase(d, "lesson-1", T0, scalar));
    doc = addNote(doc, "a", "x", T0 + 2.5 * MIN, { phase: "lesson-1", minute: 2 });
    doc = addNote(doc, "b", "x", T0 + 0.5 * MIN, { phase: "lesson-1", minute: 0 });
    doc = addNote(doc, "c", "x", T0 + 2.1 * MIN, { phase: "lesson-1", minute: 2 });
    doc = addNote(doc, "d", "x", T0, { phase: "plan", minute: 0 });
    doc = addNote(doc, "e", "x", T0 + 9 * MIN, { phase: "lesson-1" }); // minute from its time
    doc = change(doc, (d) => void callTimeout(d, "t1", { name: "Ana", deviceId: "a" }, T0 + 2 * MIN, scalar));
    const slots = timeline(doc, "lesson-1", readNotes(doc));
    expect(slots.map((s) => [s.minute, s.notes.map((n) => n.id), s.timeouts.map((t) => t.id)])).toEqual([
      [0, ["b"], []],
      [2, ["c", "a"], ["t1"]],
      [9, ["e"], []],
    ]);
    expect(timeline(doc, "lesson-2", readNotes(doc))).toEqual([]);
  });

  it("lists the agreements of a phase in order", () => {
    const doc = change(v2Board(), (d) => {
      d.agreements = {
        z: { text: "Launch with two ten-frames", phase: scalar("debrief-1"), order: 2, createdAt: T0 },
        y: { text: "Wait 10 s before helping", phase: scalar("debrief-1"), order: 1, createdAt: T0 + 1 },
        x: { text: "Visit next week", phase: scalar("final-debrief"), order: 0, createdAt: T0 },
        w: { text: "", phase: scalar("debrief-1"), order: 0, createdAt: T0 },
      };
    });
    expect(agreementsOf(doc, "debrief-1").map((a) => a.id)).toEqual(["y", "z"]);
    expect(agreementsOf(v1Board(), "debrief-1")).toEqual([]);
  });
});
