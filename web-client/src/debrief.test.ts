import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { buildNote, readCategories, readNotes, type Note } from "./board";
import {
  addAgreement,
  addCategory,
  addChild,
  movedOrder,
  updateCategory,
  addCluster,
  cleanAlias,
  groupByChild,
  notesOfChild,
  readChildren,
  groupByCluster,
  readClusters,
  removeCluster,
  setNoteCluster,
  type DebriefDoc,
  agreementsByPhase,
  cleanLine,
  editAgreement,
  isDebrief,
  nextAgreementOrder,
  pinnedFirst,
  removeAgreement,
  setNoteFlag,
  visibleNotes,
} from "./debrief";
import { agreementsOf, type RunDoc } from "./labrun";

const scalar = (s: string) => new A.ImmutableString(s);
const T0 = 1_800_000_000_000;

function board(current?: string): A.Doc<RunDoc> {
  return A.change(A.init<RunDoc>(), (d) => {
    d.schemaVersion = 2;
    d.notes = {};
    d.phases = { "debrief-1": { label: "Debrief 1", order: 2 }, "lesson-2": { label: "Lesson 2", order: 3 } };
    d.timeouts = {};
    d.agreements = {};
    if (current) d.currentPhase = scalar(current);
  });
}

function withNotes(doc: A.Doc<RunDoc>, ids: string[]): A.Doc<RunDoc> {
  return A.change(doc, (d) => {
    ids.forEach((id, i) => {
      (d.notes as Record<string, unknown>)[id] = buildNote({ text: `note ${id}`, category: "c", authorName: "Ana", authorId: "dev", createdAt: T0 + i }, scalar);
    });
  });
}

const note = (id: string, flags: Partial<Note> = {}): Note => ({ id, text: id, category: "c", authorName: "", authorId: "", createdAt: 0, children: [], ...flags });

describe("agreements", () => {
  it("adds agreements to the current phase, in order, with an optional owner", () => {
    let doc = board("debrief-1");
    doc = A.change(doc, (d) => {
      expect(addAgreement(d, "a1", { text: "  Start with a number talk ", owner: "Kim" }, T0, scalar)).toBe(true);
      expect(addAgreement(d, "a2", { text: "Give ten-frames to every table" }, T0 + 1, scalar)).toBe(true);
      expect(addAgreement(d, "a3", { text: "   " }, T0, scalar)).toBe(false);
    });
    const list = agreementsOf(doc, "debrief-1");
    expect(list.map((a) => [a.id, a.text, a.owner, a.order])).toEqual([
      ["a1", "Start with a number talk", "Kim", 1],
      ["a2", "Give ten-frames to every table", "", 2],
    ]);
    expect(nextAgreementOrder(doc)).toBe(3);
    expect(list[0].createdAt).toBe(T0);
  });

  it("needs a current phase and an existing agreements map", () => {
    const none = board();
    A.change(none, (d) => expect(addAgreement(d, "a", { text: "x" }, T0, scalar)).toBe(false));
    const noMap = A.change(A.init<RunDoc>(), (d) => {
      d.currentPhase = scalar("debrief-1");
    });
    const after = A.change(noMap, (d) => expect(addAgreement(d, "a", { text: "x" }, T0, scalar)).toBe(false));
    expect(after.agreements).toBeUndefined();
  });

  it("edits text and owner, and removes", () => {
    let doc = board("debrief-1");
    doc = A.change(doc, (d) => addAgreement(d, "a1", { text: "Try it", owner: "Kim" }, T0, scalar));
    doc = A.change(doc, (d) => {
      expect(editAgreement(d, "a1", { text: "Try it again", owner: "" }, scalar, (path, v) => A.updateText(d, path, v))).toBe(true);
      expect(editAgreement(d, "a1", { text: "Try it again" }, scalar)).toBe(false);
    });
    expect(agreementsOf(doc, "debrief-1").map((a) => [a.text, a.owner])).toEqual([["Try it again", ""]]);
    doc = A.change(doc, (d) => expect(removeAgreement(d, "a1")).toBe(true));
    expect(agreementsOf(doc, "debrief-1")).toEqual([]);
  });

  it("concurrent edits of one agreement's text merge", () => {
    let doc = board("debrief-1");
    doc = A.change(doc, (d) => addAgreement(d, "a1", { text: "Use ten-frames" }, T0, scalar));
    let a = A.clone(doc);
    let b = A.clone(doc);
    a = A.change(a, (d) => editAgreement(d, "a1", { text: "Use two ten-frames" }, scalar, (p, v) => A.updateText(d, p, v)));
    b = A.change(b, (d) => editAgreement(d, "a1", { text: "Use ten-frames first" }, scalar, (p, v) => A.updateText(d, p, v)));
    const merged = A.merge(a, b);
    expect(agreementsOf(merged, "debrief-1")[0].text).toBe("Use two ten-frames first");
  });

  it("agreements added at once on two devices both survive", () => {
    const doc = board("debrief-1");
    const a = A.change(A.clone(doc), (d) => addAgreement(d, "a", { text: "one" }, T0, scalar));
    const b = A.change(A.clone(doc), (d) => addAgreement(d, "b", { text: "two" }, T0, scalar));
    expect(agreementsOf(A.merge(a, b), "debrief-1").map((x) => x.id)).toEqual(["a", "b"]);
  });

  it("groups agreements by phase, in phase order", () => {
    let doc = board("lesson-2");
    doc = A.change(doc, (d) => addAgreement(d, "late", { text: "later" }, T0, scalar));
    doc = A.change(doc, (d) => {
      d.currentPhase = scalar("debrief-1");
      addAgreement(d, "early", { text: "earlier" }, T0, scalar);
    });
    expect(agreementsByPhase(doc, ["debrief-1", "lesson-2"]).map((g) => [g.phase, g.agreements.map((a) => a.id)])).toEqual([
      ["debrief-1", ["early"]],
      ["lesson-2", ["late"]],
    ]);
  });

  it("knows debriefs and cleans lines", () => {
    expect(isDebrief("debrief-1")).toBe(true);
    expect(isDebrief("final-debrief")).toBe(true);
    expect(isDebrief("lesson-1")).toBe(false);
    expect(isDebrief(undefined)).toBe(false);
    expect(cleanLine(" a \n b ", 10)).toBe("a b");
    expect(cleanLine("abcdef", 3)).toBe("abc");
    expect(cleanLine("  ", 3)).toBeUndefined();
  });
});

describe("facilitator flags", () => {
  it("sets and clears pinned, highlighted and hidden on existing notes only", () => {
    let doc = withNotes(board("debrief-1"), ["n1", "n2"]);
    doc = A.change(doc, (d) => {
      expect(setNoteFlag(d, "n1", "pinned", true)).toBe(true);
      expect(setNoteFlag(d, "n1", "pinned", true)).toBe(false);
      expect(setNoteFlag(d, "n2", "hidden", true)).toBe(true);
      expect(setNoteFlag(d, "n2", "highlighted", true)).toBe(true);
      expect(setNoteFlag(d, "gone", "hidden", true)).toBe(false);
    });
    let notes = readNotes(doc);
    expect(notes.find((n) => n.id === "n1")).toMatchObject({ pinned: true });
    expect(notes.find((n) => n.id === "n2")).toMatchObject({ hidden: true, highlighted: true });
    expect(doc.notes!["gone"]).toBeUndefined();
    doc = A.change(doc, (d) => {
      expect(setNoteFlag(d, "n2", "hidden", false)).toBe(true);
      expect(setNoteFlag(d, "n2", "hidden", false)).toBe(false);
    });
    notes = readNotes(doc);
    expect(notes.find((n) => n.id === "n2")!.hidden).toBeUndefined();
  });

  it("flags set at once by two devices both survive", () => {
    const doc = withNotes(board("debrief-1"), ["n1"]);
    const a = A.change(A.clone(doc), (d) => setNoteFlag(d, "n1", "pinned", true));
    const b = A.change(A.clone(doc), (d) => setNoteFlag(d, "n1", "highlighted", true));
    expect(readNotes(A.merge(a, b))[0]).toMatchObject({ pinned: true, highlighted: true });
  });

  it("puts pinned notes first, keeping each part's order", () => {
    const notes = [note("a"), note("b", { pinned: true }), note("c"), note("d", { pinned: true })];
    expect(pinnedFirst(notes).map((n) => n.id)).toEqual(["b", "d", "a", "c"]);
  });

  it("shows hidden notes only when asked", () => {
    const notes = [note("a"), note("b", { hidden: true }), note("c")];
    expect(visibleNotes(notes, false).map((n) => n.id)).toEqual(["a", "c"]);
    expect(visibleNotes(notes, true).map((n) => n.id)).toEqual(["a", "b", "c"]);
  });
});

describe("clusters", () => {
  const withClusters = () =>
    A.change(withNotes(board("debrief-1"), ["n1", "n2", "n3"]), (d) => {
      (d as DebriefDoc).clusters = {};
    });

  it("adds clusters in order and groups notes by them", () => {
    let doc = withClusters() as A.Doc<DebriefDoc>;
    doc = A.change(doc, (d) => {
      expect(addCluster(d, "c1", " Making ten ", T0)).toBe(true);
      expect(addCluster(d, "c2", "Counting on", T0 + 1)).toBe(true);
      expect(addCluster(d, "c3", "  ", T0)).toBe(false);
      expect(setNoteCluster(d, "n1", "c2", scalar)).toBe(true);
      expect(setNoteCluster(d, "n2", "c2", scalar)).toBe(true);
      expect(setNoteCluster(d, "n3", "nope", scalar)).toBe(false);
    });
    const clusters = readClusters(doc);
    expect(clusters.map((c) => [c.id, c.label, c.order])).toEqual([
      ["c1", "Making ten", 1],
      ["c2", "Counting on", 2],
    ]);
    const { groups, loose } = groupByCluster(clusters, readNotes(doc));
    expect(groups.map((g) => [g.cluster.id, g.notes.map((n) => n.id)])).toEqual([
      ["c1", []],
      ["c2", ["n2", "n1"]],
    ]);
    expect(loose.map((n) => n.id)).toEqual(["n3"]);
  });

  it("taking a note out deletes its clusterId; removing a cluster frees its notes", () => {
    let doc = withClusters() as A.Doc<DebriefDoc>;
    doc = A.change(doc, (d) => {
      addCluster(d, "c1", "Making ten", T0);
      setNoteCluster(d, "n1", "c1", scalar);
      setNoteCluster(d, "n2", "c1", scalar);
    });
    doc = A.change(doc, (d) => expect(setNoteCluster(d, "n1", undefined, scalar)).toBe(true));
    expect("clusterId" in doc.notes!["n1"]!).toBe(false);
    doc = A.change(doc, (d) => expect(removeCluster(d, "c1")).toBe(true));
    expect(readClusters(doc)).toEqual([]);
    expect(readNotes(doc).every((n) => n.clusterId === undefined)).toBe(true);
  });

  it("a note whose cluster is gone counts as loose; no clusters map, no writes", () => {
    const notes = [note("a", { clusterId: "gone" })];
    expect(groupByCluster([], notes).loose.map((n) => n.id)).toEqual(["a"]);
    const doc = withNotes(board("debrief-1"), ["n1"]);
    const after = A.change(doc, (d) => expect(addCluster(d as DebriefDoc, "c", "x", T0)).toBe(false));
    expect((after as DebriefDoc).clusters).toBeUndefined();
  });

  it("two facilitators grouping at once both keep their work", () => {
    let doc = withClusters() as A.Doc<DebriefDoc>;
    doc = A.change(doc, (d) => addCluster(d, "c1", "Making ten", T0));
    const a = A.change(A.clone(doc), (d) => setNoteCluster(d, "n1", "c1", scalar));
    const b = A.change(A.clone(doc), (d) => {
      addCluster(d, "c2", "Counting on", T0);
      setNoteCluster(d, "n2", "c2", scalar);
    });
    const merged = A.merge(a, b);
    const { groups } = groupByCluster(readClusters(merged), readNotes(merged));
    expect(groups.map((g) => [g.cluster.id, g.notes.map((n) => n.id)])).toEqual([
      ["c1", ["n1"]],
      ["c2", ["n2"]],
    ]);
  });
});

describe("children", () => {
  const withChildren = () =>
    A.change(board("lesson-1"), (d) => {
      (d as DebriefDoc).children = {};
    }) as A.Doc<DebriefDoc>;
  const me = { name: "Ana", deviceId: "dev-ana" };

  it("adds aliases once, cleaned, and lists them sorted", () => {
    let doc = withChildren();
    doc = A.change(doc, (d) => {
      expect(addChild(d, "  T. ", me, T0, scalar)).toBe(true);
      expect(addChild(d, "R.", me, T0, scalar)).toBe(true);
      expect(addChild(d, "ana b", me, T0, scalar)).toBe(true);
      expect(addChild(d, "T.", me, T0 + 1, scalar)).toBe(false);
      expect(addChild(d, "   ", me, T0, scalar)).toBe(false);
    });
    expect(readChildren(doc)).toEqual(["ana b", "R.", "T."]);
    expect(cleanAlias("x".repeat(40))).toHaveLength(24);
  });

  it("never creates the children map", () => {
    const doc = board("lesson-1") as A.Doc<DebriefDoc>;
    const after = A.change(doc, (d) => expect(addChild(d, "T.", me, T0, scalar)).toBe(false));
    expect(after.children).toBeUndefined();
  });

  it("aliases added at once on two phones are both kept", () => {
    const doc = withChildren();
    const a = A.change(A.clone(doc), (d) => addChild(d, "T.", me, T0, scalar));
    const b = A.change(A.clone(doc), (d) => addChild(d, "R.", { name: "Ben", deviceId: "dev-ben" }, T0, scalar));
    expect(readChildren(A.merge(a, b))).toEqual(["R.", "T."]);
  });

  it("filters and groups notes by child", () => {
    const notes = [note("n1", { children: ["T."] }), note("n2", { children: ["R.", "T."] }), note("n3"), note("n4", { children: ["Z."] })];
    expect(notesOfChild(notes, "T.").map((n) => n.id)).toEqual(["n1", "n2"]);
    expect(notesOfChild(notes, undefined)).toHaveLength(4);
    expect(notesOfChild(notes, "Q.")).toEqual([]);
    expect(groupByChild(["R.", "T.", "Q."], notes).map((g) => [g.alias, g.notes.map((n) => n.id)])).toEqual([
      ["R.", ["n2"]],
      ["T.", ["n1", "n2"]],
      ["Q.", []],
      ["Z.", ["n4"]],
    ]);
  });

  it("a note keeps the children it was written about", () => {
    const doc = A.change(board("lesson-1"), (d) => {
      (d.notes as Record<string, unknown>)["n"] = buildNote({ text: "x", category: "c", authorName: "Ana", authorId: "dev", createdAt: T0, children: ["T.", "R."] }, scalar);
    });
    expect(readNotes(doc)[0].children).toEqual(["T.", "R."]);
  });
});

describe("categories", () => {
  const withCats = () =>
    A.change(board("debrief-1"), (d) => {
      d.categories = {
        a: { label: "Student thinking", color: "#2563eb", order: 0 },
        b: { label: "Strategies", color: "#16a34a", order: 1 },
        c: { label: "Next steps", color: "#0f766e", order: 2 },
      };
    }) as A.Doc<DebriefDoc>;

  it("renames, recolours and reorders one category", () => {
    let doc = withCats();
    doc = A.change(doc, (d) => {
      expect(updateCategory(d, "c", { label: " Try next ", color: "#AA0000" }, (p, v) => A.updateText(d, p, v))).toBe(true);
      expect(updateCategory(d, "c", { color: "red" })).toBe(false);
      expect(updateCategory(d, "nope", { label: "x" })).toBe(false);
      expect(updateCategory(d, "c", { order: movedOrder([0, 1, 2], 2, -1)! })).toBe(true);
    });
    expect(readCategories(doc).map((c) => [c.id, c.label, c.color])).toEqual([
      ["a", "Student thinking", "#2563eb"],
      ["c", "Try next", "#aa0000"],
      ["b", "Strategies", "#16a34a"],
    ]);
  });

  it("moves between neighbours and knows the ends", () => {
    expect(movedOrder([0, 1, 2], 0, 1)).toBe(1.5);
    expect(movedOrder([0, 1, 2], 2, -1)).toBe(0.5);
    expect(movedOrder([0, 1, 2], 1, -1)).toBe(-0.5);
    expect(movedOrder([0, 1, 2], 1, 1)).toBe(2.5);
    expect(movedOrder([0, 1, 2], 0, -1)).toBeUndefined();
    expect(movedOrder([0, 1, 2], 2, 1)).toBeUndefined();
    expect(movedOrder([1, 1, 1], 2, -1)).toBe(0.5);
  });

  it("adds a category at the end; never creates the map", () => {
    let doc = withCats();
    doc = A.change(doc, (d) => expect(addCategory(d, "d", "Materials", "#123456")).toBe(true));
    expect(readCategories(doc).at(-1)).toMatchObject({ id: "d", label: "Materials", color: "#123456", order: 3 });
    const bare = A.change(A.init<DebriefDoc>(), (d) => expect(addCategory(d, "d", "x", "#123456")).toBe(false));
    expect(bare.categories).toBeUndefined();
  });

  it("a rename and a recolour made at once both survive", () => {
    const doc = withCats();
    const a = A.change(A.clone(doc), (d) => updateCategory(d, "b", { label: "Strategies we saw" }, (p, v) => A.updateText(d, p, v)));
    const b = A.change(A.clone(doc), (d) => updateCategory(d, "b", { color: "#000000" }));
    expect(readCategories(A.merge(a, b)).find((c) => c.id === "b")).toMatchObject({ label: "Strategies we saw", color: "#000000" });
  });
});
