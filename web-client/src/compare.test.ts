import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { buildNote, type Category, type Note } from "./board";
import { addAgreement } from "./debrief";
import {
  compareLessons,
  formatDuration,
  lessonPair,
  lessonsOf,
  lessonState,
  lessonTimeouts,
  nextStepsByCoach,
  rankPicks,
  pickTotals,
  plural,
  type CompareSource,
} from "./compare";
import { callTimeout, endTimeouts, runFieldsForNewNote, setCurrentPhase, type Agreement, type Phase, type Timeout } from "./labrun";
import { addNextStep, readBoard, togglePick, type StoredBoard } from "./model";

const T0 = 1_800_000_000_000;
const MIN = 60_000;

const categories: Category[] = [
  { id: "student-thinking", label: "Student thinking", color: "#2563eb", order: 0 },
  { id: "strategies", label: "Strategies", color: "#16a34a", order: 1 },
];

function phases(started: Record<string, [number, number?]> = {}): Phase[] {
  const base: Phase[] = [
    { id: "plan", label: "Plan", order: 0 },
    { id: "lesson-1", label: "Lesson 1", order: 1 },
    { id: "debrief-1", label: "Debrief 1", order: 2 },
    { id: "lesson-2", label: "Lesson 2", order: 3 },
    { id: "final-debrief", label: "Final debrief", order: 4 },
  ];
  return base.map((p) => (started[p.id] ? { ...p, startedAt: started[p.id][0], endedAt: started[p.id][1] } : p));
}

let seq = 0;
function note(phase: string | undefined, category: string, at: number, extra: Partial<Note> = {}): Note {
  seq += 1;
  return {
    id: `n${String(seq).padStart(3, "0")}`,
    text: `note ${seq}`,
    category,
    authorName: "Ana",
    authorId: "dev-ana",
    createdAt: at,
    children: [],
    ...(phase ? { phase } : {}),
    ...extra,
  };
}

function source(over: Partial<CompareSource> = {}): CompareSource {
  return { categories, phases: phases(), timeouts: [], notes: [], agreements: [], ...over };
}

const agreement = (id: string, phase: string, order: number, text = id): Agreement => ({ id, text, owner: "", phase, createdAt: T0 + order, order });

describe("which lessons are compared", () => {
  it("takes lessons by phase order, whatever order the map holds them in", () => {
    const ps = phases().reverse();
    expect(lessonsOf(ps).map((p) => p.id)).toEqual(["lesson-1", "lesson-2"]);
  });

  it("compares the first two lessons until a second one has started", () => {
    expect(lessonPair(phases()).map((p) => p?.id)).toEqual(["lesson-1", "lesson-2"]);
    expect(lessonPair(phases({ "lesson-1": [T0] })).map((p) => p?.id)).toEqual(["lesson-1", "lesson-2"]);
  });

  it("compares the latest started lesson with the one before it when the facilitator added a third", () => {
    const ps = [...phases({ "lesson-1": [T0, T0 + 40 * MIN], "lesson-2": [T0 + 90 * MIN, T0 + 130 * MIN] }), { id: "lesson-x3", label: "Lesson 3", order: 5, startedAt: T0 + 200 * MIN }];
    expect(lessonPair(ps).map((p) => p?.id)).toEqual(["lesson-2", "lesson-x3"]);
  });

  it("follows renamed and reordered lessons by order, not by id", () => {
    const ps: Phase[] = [
      { id: "lesson-b", label: "Second visit", order: 5, startedAt: T0 + 100 * MIN },
      { id: "lesson-a", label: "First visit", order: 1, startedAt: T0 },
      { id: "debrief-q", label: "Talk", order: 3 },
    ];
    expect(lessonPair(ps).map((p) => p?.label)).toEqual(["First visit", "Second visit"]);
  });

  it("has no second lesson on a lab planned with one", () => {
    const ps = phases().filter((p) => p.id !== "lesson-2");
    expect(lessonPair(ps).map((p) => p?.id)).toEqual(["lesson-1", undefined]);
    const c = compareLessons(source({ phases: ps, notes: [note("lesson-1", "strategies", T0)] }));
    expect(c.second).toEqual({ state: "not-taught", noteCount: 0, timeouts: [] });
    expect(c.rows[1].first).toHaveLength(1);
    expect(c.between).toEqual([]);
  });

  it("uses the facilitator's choice of two lessons, and ignores a choice that is not two lessons", () => {
    const ps = [...phases({ "lesson-1": [T0], "lesson-2": [T0 + 90 * MIN] }), { id: "lesson-x3", label: "Lesson 3", order: 5, startedAt: T0 + 200 * MIN }];
    expect(compareLessons(source({ phases: ps }), { pair: ["lesson-1", "lesson-x3"] }).second.phase?.id).toBe("lesson-x3");
    expect(compareLessons(source({ phases: ps }), { pair: ["lesson-1", "lesson-1"] }).first.phase?.id).toBe("lesson-2");
    expect(compareLessons(source({ phases: ps }), { pair: ["lesson-1", "plan"] }).first.phase?.id).toBe("lesson-2");
  });
});

describe("lesson state", () => {
  const ps = phases({ "lesson-1": [T0, T0 + 40 * MIN], "lesson-2": [T0 + 90 * MIN] });
  it("is not taught before it starts, in progress while current, taught after", () => {
    expect(lessonState(undefined, undefined)).toBe("not-taught");
    expect(lessonState(phases()[3], ps[3])).toBe("not-taught");
    expect(lessonState(ps[3], ps[3])).toBe("in-progress");
    expect(lessonState(ps[1], ps[3])).toBe("taught");
  });
});

describe("Lesson 1 beside Lesson 2", () => {
  const ps = phases({ "lesson-1": [T0, T0 + 40 * MIN], "debrief-1": [T0 + 40 * MIN, T0 + 90 * MIN], "lesson-2": [T0 + 90 * MIN] });

  it("puts each lesson's notes in their category row, oldest first, and leaves other phases out", () => {
    const a = note("lesson-1", "strategies", T0 + 5 * MIN);
    const b = note("lesson-1", "strategies", T0 + 2 * MIN);
    const c = note("lesson-2", "strategies", T0 + 95 * MIN);
    const d = note("lesson-2", "student-thinking", T0 + 96 * MIN);
    const planNote = note("plan", "strategies", T0 - 10 * MIN);
    const debriefNote = note("debrief-1", "strategies", T0 + 50 * MIN);
    const noPhase = note(undefined, "strategies", T0 - 20 * MIN);
    const cmp = compareLessons(source({ phases: ps, currentPhase: ps[3], notes: [a, b, c, d, planNote, debriefNote, noPhase] }));
    expect(cmp.rows.map((r) => r.category.id)).toEqual(["student-thinking", "strategies"]);
    expect(cmp.rows[1].first.map((n) => n.id)).toEqual([b.id, a.id]);
    expect(cmp.rows[1].second.map((n) => n.id)).toEqual([c.id]);
    expect(cmp.rows[0].first).toEqual([]);
    expect(cmp.rows[0].second.map((n) => n.id)).toEqual([d.id]);
    expect(cmp.first).toMatchObject({ state: "taught", noteCount: 2 });
    expect(cmp.second).toMatchObject({ state: "in-progress", noteCount: 2 });
    expect(cmp.first.phase?.id).toBe("lesson-1");
  });

  it("leaves hidden notes out of rows and counts, unless asked to show them", () => {
    const shown = note("lesson-1", "strategies", T0 + MIN);
    const hidden = note("lesson-1", "strategies", T0 + 2 * MIN, { hidden: true });
    const cmp = compareLessons(source({ phases: ps, notes: [shown, hidden] }));
    expect(cmp.rows[1].first.map((n) => n.id)).toEqual([shown.id]);
    expect(cmp.first.noteCount).toBe(1);
    expect(compareLessons(source({ phases: ps, notes: [shown, hidden] }), { showHidden: true }).first.noteCount).toBe(2);
  });

  it("adds an Other row last only when a lesson note has a category the board no longer has", () => {
    expect(compareLessons(source({ phases: ps, notes: [note("lesson-1", "strategies", T0)] })).rows).toHaveLength(2);
    const stray = note("lesson-2", "gone", T0 + 100 * MIN);
    const cmp = compareLessons(source({ phases: ps, notes: [stray, note("plan", "gone", T0)] }));
    expect(cmp.rows.map((r) => r.category.label)).toEqual(["Student thinking", "Strategies", "Other"]);
    expect(cmp.rows[2].second.map((n) => n.id)).toEqual([stray.id]);
    expect(cmp.rows[2].first).toEqual([]);
  });

  it("shows the agreements of the phases between the two lessons, in order, and no others", () => {
    const agreements = [
      agreement("late", "debrief-1", 2),
      agreement("early", "debrief-1", 1),
      agreement("final", "final-debrief", 3),
      agreement("planned", "plan", 0),
    ];
    const cmp = compareLessons(source({ phases: ps, agreements }));
    expect(cmp.between.map((p) => p.id)).toEqual(["debrief-1"]);
    expect(cmp.agreements.map((g) => g.id)).toEqual(["early", "late"]);
  });

  it("has Lesson 2 not taught yet while Lesson 1 runs", () => {
    const running = phases({ "lesson-1": [T0] });
    const cmp = compareLessons(source({ phases: running, currentPhase: running[1], notes: [note("lesson-1", "strategies", T0 + MIN)] }));
    expect(cmp.first.state).toBe("in-progress");
    expect(cmp.second.state).toBe("not-taught");
    expect(cmp.second.phase?.label).toBe("Lesson 2");
    expect(cmp.rows.every((r) => r.second.length === 0)).toBe(true);
  });
});

describe("a lesson's time-outs", () => {
  const lesson: Phase = { id: "lesson-1", label: "Lesson 1", order: 1, startedAt: T0 };
  const t1: Timeout = { id: "t1", phase: "lesson-1", calledBy: "Ben", calledById: "dev-ben", startedAt: T0 + 12 * MIN + 30_000, endedAt: T0 + 14 * MIN + 35_000, note: "" };
  const t2: Timeout = { id: "t2", phase: "lesson-1", calledBy: "Cy", calledById: "dev-cy", startedAt: T0 + 30 * MIN, note: "" };
  const other: Timeout = { id: "t0", phase: "lesson-2", calledBy: "Cy", calledById: "dev-cy", startedAt: T0 + 1 * MIN, note: "" };

  it("says when (minute into the lesson), who, how long, and how many notes were written during each", () => {
    const notes = [
      note("lesson-1", "strategies", T0 + 13 * MIN, { timeoutId: "t1" }),
      // Written in its time on a phone that had not heard of it yet.
      note("lesson-1", "strategies", T0 + 14 * MIN),
      // Linked to it, arriving a little after it ended (a slow phone).
      note("lesson-1", "strategies", T0 + 15 * MIN, { timeoutId: "t1" }),
      note("lesson-1", "strategies", T0 + 20 * MIN),
      note("lesson-1", "strategies", T0 + 31 * MIN, { timeoutId: "t2" }),
      note("lesson-1", "strategies", T0 + 13 * MIN, { timeoutId: "t1", hidden: true }),
    ].filter((n) => !n.hidden);
    const out = lessonTimeouts(lesson, [t2, other, t1], notes);
    expect(out).toEqual([
      { id: "t1", calledBy: "Ben", startedAt: t1.startedAt, endedAt: t1.endedAt, minute: 12, durationMs: 2 * MIN + 5_000, noteCount: 3, note: "" },
      { id: "t2", calledBy: "Cy", startedAt: t2.startedAt, minute: 30, noteCount: 1, note: "" },
    ]);
  });

  it("counts only the shown notes of the lesson in a comparison", () => {
    const ps = [lesson, { id: "lesson-2", label: "Lesson 2", order: 3 }];
    const notes = [note("lesson-1", "strategies", T0 + 13 * MIN, { timeoutId: "t1" }), note("lesson-1", "strategies", T0 + 13 * MIN, { timeoutId: "t1", hidden: true })];
    const cmp = compareLessons(source({ phases: ps, timeouts: [t1], notes }));
    expect(cmp.first.timeouts.map((t) => t.noteCount)).toEqual([1]);
    expect(cmp.second.timeouts).toEqual([]);
  });

  it("has no minute when the lesson has no start", () => {
    expect(lessonTimeouts({ ...lesson, startedAt: undefined }, [t1], [])[0].minute).toBeUndefined();
  });
});

describe("formatting", () => {
  it("says durations and counts plainly", () => {
    expect(formatDuration(45_000)).toBe("45 s");
    expect(formatDuration(2 * MIN + 5_000)).toBe("2 min 05 s");
    expect(formatDuration(-1)).toBe("0 s");
    expect(plural(1, "note")).toBe("1 note");
    expect(plural(0, "note")).toBe("0 notes");
    expect(plural(2, "person", "people")).toBe("2 people");
  });
});

describe("picks", () => {
  const a = note("lesson-1", "strategies", T0 + 1);
  const b = note("lesson-1", "strategies", T0 + 2);
  const c = note("lesson-2", "strategies", T0 + 3);
  const d = note("lesson-2", "strategies", T0 + 4, { hidden: true });
  const e = note("lesson-2", "strategies", T0 + 5);
  const picks = [
    { authorId: "ana", noteId: b.id, at: 10 },
    { authorId: "ben", noteId: b.id, at: 11 },
    { authorId: "ana", noteId: c.id, at: 5 },
    { authorId: "cy", noteId: a.id, at: 20 },
    { authorId: "ben", noteId: d.id, at: 1 },
    { authorId: "cy", noteId: d.id, at: 2 },
    { authorId: "cy", noteId: "gone", at: 3 },
  ];

  it("shows only picked notes, most picked first, a tie going to the note picked first", () => {
    const out = rankPicks([a, b, c, d, e], picks);
    expect(out.map((p) => [p.note.id, p.count])).toEqual([
      [b.id, 2],
      [c.id, 1],
      [a.id, 1],
    ]);
  });

  it("leaves hidden notes out unless asked", () => {
    expect(rankPicks([a, b, c, d, e], picks, { showHidden: true })[0]).toMatchObject({ note: { id: d.id }, count: 2, firstAt: 1 });
  });

  it("counts people and picks", () => {
    expect(pickTotals(picks)).toEqual({ people: 3, picks: 7 });
    expect(pickTotals([])).toEqual({ people: 0, picks: 0 });
  });
});

describe("next steps by coach", () => {
  const step = (id: string, authorId: string, authorName: string, createdAt: number, text = `step ${id}`) => ({ id, text, authorId, authorName, createdAt });

  it("groups by coach, coaches by name, each coach's steps oldest first, blank ones left out", () => {
    const out = nextStepsByCoach([
      step("s1", "dev-zoe", "Zoe", 3),
      step("s2", "dev-ana", "ana", 5),
      step("s3", "dev-zoe", "Zoe", 1),
      step("s4", "dev-ben", "Ben", 2),
      step("s5", "dev-ben", "Ben", 4, "   "),
    ]);
    expect(out.map((c) => [c.name, c.steps.map((s) => s.id)])).toEqual([
      ["ana", ["s2"]],
      ["Ben", ["s4"]],
      ["Zoe", ["s3", "s1"]],
    ]);
  });

  it("names a coach by their latest step, and keeps two coaches with one name apart", () => {
    const out = nextStepsByCoach([step("a", "dev-1", "M.L.", 1), step("b", "dev-1", "Maria L.", 2), step("c", "dev-2", "Maria L.", 3), step("d", "dev-3", "", 4)]);
    expect(out.map((c) => [c.authorId, c.name])).toEqual([
      ["dev-1", "Maria L."],
      ["dev-2", "Maria L."],
      ["dev-3", "Someone"],
    ]);
  });
});

describe("from a real board document, through readBoard", () => {
  const s = (v: string) => new A.ImmutableString(v);
  const board = () =>
    A.change(A.init<StoredBoard>(), (d) => {
      d.schemaVersion = 3;
      d.lab = { title: "Making ten", pickLimit: 7 };
      d.categories = { strategies: { label: "Strategies", color: "#16a34a", order: 0 } };
      d.phases = {
        plan: { label: "Plan", order: 0 },
        "lesson-1": { label: "Lesson 1", order: 1 },
        "debrief-1": { label: "Debrief 1", order: 2 },
        "lesson-2": { label: "Lesson 2", order: 3 },
        "final-debrief": { label: "Final debrief", order: 4 },
      };
      d.notes = {};
      d.timeouts = {};
      d.agreements = {};
      d.clusters = {};
      d.children = {};
      d.picks = {};
      d.nextSteps = {};
    });

  it("compares the lessons, ranks picks and groups next steps as the board's writers left them", () => {
    let doc = board();
    const note = (id: string, author: string, text: string, now: number) =>
      (doc = A.change(doc, (d) => {
        d.notes![id] = buildNote({ text, category: "strategies", authorName: author, authorId: author, createdAt: now, ...runFieldsForNewNote(d, now) }, s);
      }));
    doc = A.change(doc, (d) => void setCurrentPhase(d, "lesson-1", T0, s));
    note("a", "ana", "counted on from 8", T0 + MIN);
    doc = A.change(doc, (d) => void callTimeout(d, "t1", { name: "Ben", deviceId: "ben" }, T0 + 2 * MIN, s));
    note("b", "ben", "made a ten first", T0 + 2 * MIN + 10_000);
    doc = A.change(doc, (d) => void endTimeouts(d, T0 + 3 * MIN));
    doc = A.change(doc, (d) => void setCurrentPhase(d, "debrief-1", T0 + 40 * MIN, s));
    doc = A.change(doc, (d) => void addAgreement(d, "g1", { text: "Show a full ten-frame first" }, T0 + 50 * MIN, s));
    doc = A.change(doc, (d) => void setCurrentPhase(d, "lesson-2", T0 + 60 * MIN, s));
    note("c", "cy", "saw 10 at a glance", T0 + 61 * MIN);
    doc = A.change(doc, (d) => {
      togglePick(d, "ana", "b", T0 + 70 * MIN);
      togglePick(d, "cy", "b", T0 + 71 * MIN);
      togglePick(d, "cy", "c", T0 + 72 * MIN);
      addNextStep(d, "n1", { text: "Try it with my team", authorId: "cy", authorName: "Cy" }, T0 + 80 * MIN, s);
    });

    const model = readBoard(doc);
    const cmp = compareLessons(model);
    expect(cmp.first).toMatchObject({ state: "taught", noteCount: 2 });
    expect(cmp.second).toMatchObject({ state: "in-progress", noteCount: 1 });
    expect(cmp.rows[0].first.map((n) => n.id)).toEqual(["a", "b"]);
    expect(cmp.rows[0].second.map((n) => n.id)).toEqual(["c"]);
    expect(cmp.first.timeouts).toEqual([{ id: "t1", calledBy: "Ben", startedAt: T0 + 2 * MIN, endedAt: T0 + 3 * MIN, minute: 2, durationMs: MIN, noteCount: 1, note: "" }]);
    expect(cmp.agreements.map((g) => g.text)).toEqual(["Show a full ten-frame first"]);
    expect(rankPicks(model.notes, model.picks).map((p) => [p.note.id, p.count])).toEqual([
      ["b", 2],
      ["c", 1],
    ]);
    expect(nextStepsByCoach(model.nextSteps).map((c) => [c.name, c.steps.map((x) => x.text)])).toEqual([["Cy", ["Try it with my team"]]]);
  });
});
