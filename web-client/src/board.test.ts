import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import {
  buildNote,
  groupByCategory,
  readCategories,
  readLab,
  readNotes,
  str,
  waitingNoteIds,
  type BoardDoc,
  type HistoryOps,
} from "./board";

const ops = A as unknown as HistoryOps;
const scalar = (s: string) => new A.ImmutableString(s);

/** A board as the server creates it (labels as collaborative text). */
function serverBoard(): A.Doc<BoardDoc> {
  return A.change(A.init<BoardDoc>(), (d) => {
    d.schemaVersion = 1;
    d.lab = { title: "Making ten", school: "Hillside", grade: "2", date: "2026-11-23" };
    d.categories = {
      strategies: { label: "Strategies", color: "#16a34a", order: 1 },
      "student-thinking": { label: "Student thinking", color: "#2563eb", order: 0 },
      broken: { label: "Broken colour", color: "red; background: url(x)", order: 2 },
    };
    d.notes = {};
  });
}

/** A phone's copy of the board, with its own actor. */
function phoneCopy(server: A.Doc<BoardDoc>): A.Doc<BoardDoc> {
  return A.merge(A.init<BoardDoc>(), A.clone(server));
}

function addNote(doc: A.Doc<BoardDoc>, id: string, authorId: string, text = "counted by 2s", createdAt = Date.now()) {
  return A.change(doc, (d) => {
    (d.notes as Record<string, unknown>)[id] = buildNote(
      { text, category: "strategies", authorName: authorId.toUpperCase(), authorId, createdAt },
      scalar,
    );
  });
}

describe("reading the board", () => {
  it("reads text and scalar strings alike", () => {
    expect(str("text")).toBe("text");
    expect(str(new A.ImmutableString("scalar"))).toBe("scalar");
    expect(str(undefined)).toBe("");
    expect(str(42)).toBe("");
  });

  it("orders categories and refuses colours that are not #rrggbb", () => {
    const cats = readCategories(serverBoard());
    expect(cats.map((c) => c.id)).toEqual(["student-thinking", "strategies", "broken"]);
    expect(cats[2].color).toBe("#64748b");
    expect(readLab(serverBoard()).title).toBe("Making ten");
  });

  it("reads notes written as scalar strings, newest first, skipping junk", () => {
    let doc = addNote(serverBoard(), "n1", "me", "first", 1000);
    doc = addNote(doc, "n2", "me", "<img src=x onerror=alert(1)>", 2000);
    doc = A.change(doc, (d) => {
      (d.notes as Record<string, unknown>).junk = "not a note";
      (d.notes as Record<string, unknown>).empty = { text: "" };
    });
    const notes = readNotes(doc);
    expect(notes.map((n) => n.id)).toEqual(["n2", "n1"]);
    expect(notes[0]).toMatchObject({ text: "<img src=x onerror=alert(1)>", authorId: "me", authorName: "ME", category: "strategies", createdAt: 2000, children: [] });
  });

  it("stores note fields as scalar strings, not collaborative text", () => {
    const doc = addNote(serverBoard(), "n1", "me");
    const raw = A.toJS(doc).notes!.n1!;
    expect(raw.text).toBeInstanceOf(A.ImmutableString);
    expect(raw.authorId).toBeInstanceOf(A.ImmutableString);
    expect(typeof raw.createdAt).toBe("number");
  });

  it("groups notes by category, with an Other column only when needed", () => {
    let doc = addNote(serverBoard(), "n1", "me");
    let groups = groupByCategory(readCategories(doc), readNotes(doc));
    expect(groups.map((g) => [g.category.id, g.notes.length])).toEqual([
      ["student-thinking", 0],
      ["strategies", 1],
      ["broken", 0],
    ]);
    doc = A.change(doc, (d) => {
      (d.notes as Record<string, unknown>).n2 = { text: "stray", category: "gone" };
    });
    groups = groupByCategory(readCategories(doc), readNotes(doc));
    expect(groups.at(-1)!.category.id).toBe("_other");
    expect(groups.at(-1)!.notes.map((n) => n.id)).toEqual(["n2"]);
  });
});

describe("which of my notes are waiting", () => {
  it("is every note of mine the server's heads do not contain", () => {
    let server = serverBoard();
    let phone = phoneCopy(server);
    phone = addNote(phone, "n1", "me");
    expect(waitingNoteIds(phone, "me", A.getHeads(server), ops)).toEqual(new Set(["n1"]));

    server = A.merge(server, A.clone(phone)); // the server receives and acknowledges it
    expect(waitingNoteIds(phone, "me", A.getHeads(server), ops)).toEqual(new Set());
  });

  it("counts a note as acknowledged when later changes build on it", () => {
    let server = serverBoard();
    let phone = phoneCopy(server);
    phone = addNote(phone, "n1", "me");
    server = A.merge(server, A.clone(phone));
    let other = phoneCopy(server);
    other = addNote(other, "n2", "someone-else");
    server = A.merge(server, A.clone(other));
    phone = A.merge(phone, A.clone(server));
    // The server's only head is now the other phone's change; mine is its ancestor.
    expect(A.getHeads(server)).toHaveLength(1);
    expect(waitingNoteIds(phone, "me", A.getHeads(server), ops)).toEqual(new Set());
  });

  it("never marks notes of others, and treats unknown server heads as unknown", () => {
    let server = serverBoard();
    let phone = phoneCopy(server);
    phone = addNote(phone, "mine", "me");
    phone = addNote(phone, "theirs", "other-device");
    const other = addNote(phoneCopy(server), "x", "z"); // a change this phone has not seen
    server = A.merge(server, A.clone(other));
    expect(waitingNoteIds(phone, "me", A.getHeads(server), ops)).toEqual(new Set(["mine"]));
    expect(waitingNoteIds(phone, "me", undefined, ops)).toEqual(new Set(["mine"]));
    expect(waitingNoteIds(phone, "nobody", A.getHeads(server), ops)).toEqual(new Set());
  });

  it("survives a reload: heads remembered as hex still work on the reloaded document", () => {
    let server = serverBoard();
    let phone = phoneCopy(server);
    phone = addNote(phone, "sent", "me");
    server = A.merge(server, A.clone(phone));
    const remembered = JSON.parse(JSON.stringify(A.getHeads(server))) as string[];
    phone = addNote(phone, "offline", "me");
    const reloaded = A.load<BoardDoc>(A.save(phone));
    expect(waitingNoteIds(reloaded, "me", remembered, ops)).toEqual(new Set(["offline"]));
  });
});
