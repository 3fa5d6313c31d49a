import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { buildNote } from "../board";
import type { DebriefDoc } from "../debrief";
import { changePhase, dropCluster, hidePhoto, setCluster, setFlag, showPhotos } from "./undoable";
import type { UndoableWriter, Writer } from "./view";

const scalar = (s: string) => new A.ImmutableString(s);
const T0 = 1_800_000_000_000;

function board(): A.Doc<DebriefDoc> {
  return A.change(A.init<DebriefDoc>(), (d) => {
    d.schemaVersion = 2;
    d.notes = {
      a: buildNote({ text: "A", category: "c", authorName: "Ana", authorId: "ana", createdAt: T0, phase: "lesson-1" }, scalar),
      b: buildNote({ text: "B", category: "c", authorName: "Ben", authorId: "ben", createdAt: T0 + 1, phase: "lesson-1" }, scalar),
    };
    d.phases = {
      "lesson-1": { label: "Lesson 1", order: 1 },
      "debrief-1": { label: "Debrief 1", order: 2 },
    };
    d.timeouts = {};
    d.clusters = { k: { label: "Making ten", order: 1, createdAt: T0 } };
    d.children = {};
    d.agreements = {};
  });
}

/** Applies an undoable writer, then its inverse; returns the doc after each. */
function applyAndUndo(doc: A.Doc<DebriefDoc>, fn: UndoableWriter, now = T0 + 60_000) {
  let inverse: Writer | undefined;
  const after = A.change(doc, (d) => {
    inverse = fn(d, now, scalar, () => undefined);
  });
  expect(inverse).toBeDefined();
  let undone = false;
  const back = A.change(after, (d) => {
    undone = inverse!(d, now + 1_000, scalar, () => undefined);
  });
  expect(undone).toBe(true);
  return { after, back };
}

const plain = (doc: A.Doc<DebriefDoc>) => JSON.parse(JSON.stringify(doc));

describe("undoable board writes", () => {
  it("hide, then undo: the note is as before", () => {
    const doc = board();
    const { after, back } = applyAndUndo(doc, setFlag("a", "hidden", true));
    expect(after.notes!.a!.hidden).toBe(true);
    expect(plain(back)).toEqual(plain(doc));
  });

  it("unpin, then undo: pinned again", () => {
    const doc = A.change(board(), (d) => void (d.notes!.a!.pinned = true));
    const { after, back } = applyAndUndo(doc, setFlag("a", "pinned", false));
    expect("pinned" in after.notes!.a!).toBe(false);
    expect(plain(back)).toEqual(plain(doc));
  });

  it("a write that changes nothing offers no undo", () => {
    const doc = board();
    let inverse: Writer | undefined = () => true;
    A.change(doc, (d) => {
      inverse = setFlag("a", "pinned", false)(d, T0, scalar, () => undefined);
    });
    expect(inverse).toBeUndefined();
  });

  it("hide a photo, then undo: the note is as before; show it, then undo: hidden again", () => {
    const p1 = "1".repeat(64);
    const p2 = "2".repeat(64);
    const doc = A.change(board(), (d) => {
      d.notes!.a = buildNote({ text: "A", category: "c", authorName: "Ana", authorId: "ana", createdAt: T0, photos: [p1, p2] }, scalar);
    });
    const hid = applyAndUndo(doc, hidePhoto("a", p2, true));
    expect(hid.after.notes!.a!.hiddenPhotos).toEqual({ [p2]: true });
    expect(plain(hid.back)).toEqual(plain(doc));
    const hidden = A.clone(hid.after);
    const shown = applyAndUndo(hidden, hidePhoto("a", p2, false));
    expect(shown.after.notes!.a!.hiddenPhotos).toEqual({});
    expect(plain(shown.back)).toEqual(plain(hidden));
    // Nothing to change, or a photo the note does not have: no undo.
    let inverse: Writer | undefined = () => true;
    A.change(A.clone(doc), (d) => {
      inverse = hidePhoto("a", p1, false)(d, T0, scalar, () => undefined) ?? hidePhoto("a", "3".repeat(64), true)(d, T0, scalar, () => undefined);
    });
    expect(inverse).toBeUndefined();
  });

  it("show a note's hidden photos again, then undo: exactly those hidden again", () => {
    const [p1, p2, p3] = ["1".repeat(64), "2".repeat(64), "3".repeat(64)];
    const doc = A.change(board(), (d) => {
      d.notes!.a = buildNote({ text: "A", category: "c", authorName: "Ana", authorId: "ana", createdAt: T0, photos: [p1, p2, p3] }, scalar);
      d.notes!.a!.hiddenPhotos = { [p1]: true, [p3]: true };
    });
    const { after, back } = applyAndUndo(doc, showPhotos("a", [p1, p3]));
    expect(after.notes!.a!.hiddenPhotos).toEqual({});
    expect(plain(back)).toEqual(plain(doc));
    // None of them hidden: nothing changes and nothing is offered to undo.
    let inverse: Writer | undefined = () => true;
    A.change(A.clone(doc), (d) => {
      inverse = showPhotos("a", [p2])(d, T0, scalar, () => undefined);
    });
    expect(inverse).toBeUndefined();
  });

  it("take out of a cluster, then undo: back in it", () => {
    const doc = A.change(board(), (d) => void (d.notes!.a!.clusterId = scalar("k")));
    const { after, back } = applyAndUndo(doc, setCluster("a", undefined));
    expect("clusterId" in after.notes!.a!).toBe(false);
    expect(plain(back)).toEqual(plain(doc));
  });

  it("remove a cluster, then undo: the cluster and its notes come back", () => {
    const doc = A.change(board(), (d) => {
      d.notes!.a!.clusterId = scalar("k");
      d.notes!.b!.clusterId = scalar("k");
    });
    const { after, back } = applyAndUndo(doc, dropCluster("k"));
    expect(after.clusters!.k).toBeUndefined();
    expect(plain(back)).toEqual(plain(doc));
  });

  it("a phase change, then undo: phases, current phase and time-outs as before", () => {
    const started = A.change(board(), (d) => {
      d.currentPhase = scalar("lesson-1");
      d.phases!["lesson-1"]!.startedAt = T0;
      d.timeouts!.t = { phase: scalar("lesson-1"), calledBy: scalar("Ana"), calledById: scalar("ana"), startedAt: T0 + 5 };
    });
    const { after, back } = applyAndUndo(started, changePhase("debrief-1"));
    expect(String(after.currentPhase)).toBe("debrief-1");
    expect(after.timeouts!.t!.endedAt).toBe(T0 + 60_000);
    expect(after.phases!["lesson-1"]!.endedAt).toBe(T0 + 60_000);
    expect(plain(back)).toEqual(plain(started));
  });

  it("going back to a phase that had started keeps its start; undo restores its end", () => {
    const doc = A.change(board(), (d) => {
      d.currentPhase = scalar("debrief-1");
      d.phases!["lesson-1"]!.startedAt = T0;
      d.phases!["lesson-1"]!.endedAt = T0 + 10;
      d.phases!["debrief-1"]!.startedAt = T0 + 10;
    });
    const { after, back } = applyAndUndo(doc, changePhase("lesson-1"));
    expect(after.phases!["lesson-1"]!.startedAt).toBe(T0);
    expect(plain(back)).toEqual(plain(doc));
  });

  it("an undo after someone moved on changes nothing", () => {
    const doc = A.change(board(), (d) => void (d.currentPhase = scalar("lesson-1")));
    let inverse: Writer | undefined;
    const after = A.change(doc, (d) => {
      inverse = changePhase("debrief-1")(d, T0, scalar, () => undefined);
    });
    const moved = A.change(after, (d) => void (d.currentPhase = scalar("lesson-1")));
    let undone = true;
    A.change(moved, (d) => {
      undone = inverse!(d, T0, scalar, () => undefined);
    });
    expect(undone).toBe(false);
  });
});
