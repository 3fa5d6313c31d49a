import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { currentPhase, isLesson, nextPhase, readPhases, setCurrentPhase, type RunDoc } from "./labrun";
import { isDebrief } from "./debrief";
import { addPhase, movedPhaseOrder, movePhase, newPhaseId, nextPhaseOrder, updatePhase } from "./phases";

const scalar = (s: string) => new A.ImmutableString(s);
const T0 = 1_800_000_000_000;

/** A v2 board's phases as the server creates them (labels are collaborative text). */
function board(): A.Doc<RunDoc> {
  return A.change(A.init<RunDoc>(), (d) => {
    d.schemaVersion = 2;
    d.notes = {};
    d.timeouts = {};
    d.phases = {
      plan: { label: "Plan", order: 0 },
      "lesson-1": { label: "Lesson 1", order: 1 },
      "debrief-1": { label: "Debrief 1", order: 2 },
      "lesson-2": { label: "Lesson 2", order: 3 },
      "final-debrief": { label: "Final debrief", order: 4 },
    };
  });
}

const ids = (doc: RunDoc) => readPhases(doc).map((p) => p.id);
/** Another device's copy (its own actor). */
const fork = (doc: A.Doc<RunDoc>) => A.merge(A.init<RunDoc>(), A.clone(doc));

describe("phase ids", () => {
  it("says what kind of phase it is", () => {
    expect(newPhaseId("lesson", "3f2a9c1d-0b4e-4c2a-8d1e-000000000000")).toBe("lesson-3f2a9c1d");
    expect(newPhaseId("debrief", "AB-CD")).toBe("debrief-abcd");
    expect(newPhaseId("other", "12345678")).toBe("phase-12345678");
    expect(newPhaseId("other", "--")).toBe("phase-x");
    expect(isLesson(newPhaseId("lesson", "a1"))).toBe(true);
    expect(isLesson(newPhaseId("other", "a1"))).toBe(false);
    expect(isLesson(newPhaseId("debrief", "a1"))).toBe(false);
    expect(isDebrief(newPhaseId("debrief", "a1"))).toBe(true);
    expect(isDebrief(newPhaseId("lesson", "a1"))).toBe(false);
  });
});

describe("adding a phase", () => {
  it("goes after the last one, whatever the orders", () => {
    expect(nextPhaseOrder(board())).toBe(5);
    expect(nextPhaseOrder(undefined)).toBe(0);
    const moved = A.change(board(), (d) => void (d.phases!["lesson-2"]!.order = 7.5));
    expect(nextPhaseOrder(moved)).toBe(8);
    const empty = A.change(board(), (d) => {
      for (const id of Object.keys(d.phases!)) delete d.phases![id];
    });
    expect(nextPhaseOrder(empty)).toBe(0);
  });

  it("adds a lesson at the end with a trimmed label; refuses an empty label or a taken id", () => {
    let doc = board();
    doc = A.change(doc, (d) => {
      expect(addPhase(d, "lesson-abc", "  Lesson   3 ")).toBe(true);
      expect(addPhase(d, "lesson-abc", "Again")).toBe(false);
      expect(addPhase(d, "phase-x", "   ")).toBe(false);
      expect(addPhase(d, "", "No id")).toBe(false);
    });
    expect(readPhases(doc).at(-1)).toMatchObject({ id: "lesson-abc", label: "Lesson 3", order: 5 });
    expect(readPhases(doc)).toHaveLength(6);
    // The last phase was current: the new one is next.
    doc = A.change(doc, (d) => void setCurrentPhase(d, "final-debrief", T0, scalar));
    expect(nextPhase(doc)?.id).toBe("lesson-abc");
  });

  it("cuts a long label", () => {
    const doc = A.change(board(), (d) => void addPhase(d, "phase-long", "x".repeat(100)));
    expect(readPhases(doc).at(-1)!.label).toHaveLength(40);
  });

  it("never creates the phases map", () => {
    const bare = A.change(A.init<RunDoc>(), (d) => {
      d.notes = {};
      expect(addPhase(d, "lesson-a", "Lesson 3")).toBe(false);
    });
    expect(bare.phases).toBeUndefined();
  });

  it("two devices adding at once keep both phases (and every other phase)", () => {
    const base = board();
    const a = A.change(fork(base), (d) => void addPhase(d, "lesson-aaaa", "Lesson 3"));
    const b = A.change(fork(base), (d) => void addPhase(d, "phase-bbbb", "Wrap-up"));
    const merged = A.merge(A.clone(a), b);
    expect(ids(merged)).toEqual(["plan", "lesson-1", "debrief-1", "lesson-2", "final-debrief", "lesson-aaaa", "phase-bbbb"]);
  });
});

describe("renaming a phase", () => {
  it("changes the label in place (the current phase too)", () => {
    let doc = A.change(board(), (d) => void setCurrentPhase(d, "lesson-1", T0, scalar));
    doc = A.change(doc, (d) => {
      expect(updatePhase(d, "lesson-1", { label: " Lesson 1 (Room 12) " }, (p, v) => A.updateText(d, p, v))).toBe(true);
      expect(updatePhase(d, "lesson-1", { label: "Lesson 1 (Room 12)" })).toBe(false);
      expect(updatePhase(d, "lesson-1", { label: "  " })).toBe(false);
      expect(updatePhase(d, "nope", { label: "x" })).toBe(false);
    });
    expect(currentPhase(doc)).toMatchObject({ id: "lesson-1", label: "Lesson 1 (Room 12)", order: 1 });
    expect(doc.currentPhase?.toString()).toBe("lesson-1");
  });

  it("merges two people's edits of one label", () => {
    const base = board();
    const a = A.change(fork(base), (d) => void updatePhase(d, "lesson-1", { label: "Lesson 1 (Room 12)" }, (p, v) => A.updateText(d, p, v)));
    const b = A.change(fork(base), (d) => void updatePhase(d, "lesson-1", { label: "First lesson 1" }, (p, v) => A.updateText(d, p, v)));
    const merged = A.merge(A.clone(a), b);
    expect(readPhases(merged).find((p) => p.id === "lesson-1")!.label).toBe("First lesson 1 (Room 12)");
  });

  it("replaces a label stored as a plain string", () => {
    let doc = A.change(board(), (d) => void (d.phases!.plan!.label = scalar("Plan")));
    doc = A.change(doc, (d) => expect(updatePhase(d, "plan", { label: "Planning" }, (p, v) => A.updateText(d, p, v))).toBe(true));
    expect(readPhases(doc)[0].label).toBe("Planning");
  });
});

describe("moving a phase", () => {
  it("goes halfway between its new neighbours", () => {
    const doc = board();
    expect(movedPhaseOrder(doc, "lesson-2", -1)).toBe(1.5);
    expect(movedPhaseOrder(doc, "lesson-1", 1)).toBe(2.5);
    expect(movedPhaseOrder(doc, "lesson-1", -1)).toBe(-0.5);
    expect(movedPhaseOrder(doc, "lesson-2", 1)).toBe(4.5);
    expect(movedPhaseOrder(doc, "plan", -1)).toBeUndefined();
    expect(movedPhaseOrder(doc, "final-debrief", 1)).toBeUndefined();
    expect(movedPhaseOrder(doc, "nope", 1)).toBeUndefined();
  });

  it("writes only the moved phase's order", () => {
    const before = board();
    const after = A.change(before, (d) => expect(movePhase(d, "lesson-2", -1)).toBe(true));
    expect(ids(after)).toEqual(["plan", "lesson-1", "lesson-2", "debrief-1", "final-debrief"]);
    const patches = A.diff(after, A.getHeads(before), A.getHeads(after));
    expect(patches).toEqual([{ action: "put", path: ["phases", "lesson-2", "order"], value: 1.5 }]);
  });

  it("a new phase moves up step by step, and nothing moves past an end", () => {
    let doc = A.change(board(), (d) => void addPhase(d, "phase-new", "Snack"));
    doc = A.change(doc, (d) => void movePhase(d, "phase-new", -1));
    expect(ids(doc)).toEqual(["plan", "lesson-1", "debrief-1", "lesson-2", "phase-new", "final-debrief"]);
    doc = A.change(doc, (d) => void movePhase(d, "phase-new", -1));
    expect(ids(doc)).toEqual(["plan", "lesson-1", "debrief-1", "phase-new", "lesson-2", "final-debrief"]);
    doc = A.change(doc, (d) => void movePhase(d, "phase-new", 1));
    expect(ids(doc)).toEqual(["plan", "lesson-1", "debrief-1", "lesson-2", "phase-new", "final-debrief"]);
    doc = A.change(doc, (d) => expect(movePhase(d, "plan", -1)).toBe(false));
    doc = A.change(doc, (d) => expect(movePhase(d, "final-debrief", 1)).toBe(false));
    expect(ids(doc)[0]).toBe("plan");
  });

  it("moving changes which phase is next", () => {
    let doc = A.change(board(), (d) => void setCurrentPhase(d, "lesson-1", T0, scalar));
    expect(nextPhase(doc)?.id).toBe("debrief-1");
    doc = A.change(doc, (d) => void movePhase(d, "lesson-2", -1));
    expect(nextPhase(doc)?.id).toBe("lesson-2");
  });

  it("a move and a rename of another phase on two devices both survive", () => {
    const base = board();
    const a = A.change(fork(base), (d) => void movePhase(d, "final-debrief", -1));
    const b = A.change(fork(base), (d) => void updatePhase(d, "plan", { label: "Planning" }, (p, v) => A.updateText(d, p, v)));
    const merged = A.merge(A.clone(a), b);
    expect(readPhases(merged).map((p) => [p.id, p.label])).toEqual([
      ["plan", "Planning"],
      ["lesson-1", "Lesson 1"],
      ["debrief-1", "Debrief 1"],
      ["final-debrief", "Final debrief"],
      ["lesson-2", "Lesson 2"],
    ]);
  });
});
