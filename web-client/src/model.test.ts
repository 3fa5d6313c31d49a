import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import {
  BOARD_FIELDS,
  DEFAULT_PICK_LIMIT,
  SCHEMA_VERSION,
  addNextStep,
  editNextStep,
  myPicks,
  pickCounts,
  pickKey,
  pickedNotes,
  readBoard,
  removeNextStep,
  setPickLimit,
  togglePick,
  type StoredBoard,
} from "./model";
import { undoTimeout, type RunDoc } from "./labrun";
import { buildNote } from "./board";
import { setPhotoHidden } from "./debrief";

// The board Rust writes with every field of the schema set (protocol/src/board/specimen.rs).
const SPECIMEN = new URL("../../tests/fixtures/board-specimen.automerge", import.meta.url);
const AUTHOR = "a0123456789abcdef01234567";
// The specimen note's photos (SPECIMEN_PHOTOS in specimen.rs); the second is hidden.
const PHOTOS = [
  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
];
const COLLECTIONS = new Set(["phases", "timeouts", "categories", "children", "notes", "clusters", "agreements", "picks", "nextSteps"]);

// Node's fs, without Node's types in the app's tsconfig: the import is only what this test uses.
const NODE_FS: string = "node:fs";
const { readFileSync } = (await import(/* @vite-ignore */ NODE_FS)) as { readFileSync(path: URL): Uint8Array };

function specimen(): A.Doc<StoredBoard> {
  return A.load<StoredBoard>(new Uint8Array(readFileSync(SPECIMEN)));
}

/** Every path of a document, as BOARD_FIELDS writes them (collection keys `*`, list items `[]`). */
function paths(value: unknown, prefix = "", collection = false, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) {
      const name = `${prefix}.[]`;
      out.add(name);
      paths(item, name, false, out);
    }
  } else if (value !== null && typeof value === "object" && !(value instanceof A.ImmutableString)) {
    for (const [key, item] of Object.entries(value)) {
      const name = prefix === "" ? key : `${prefix}.${collection ? "*" : key}`;
      out.add(name);
      const isCollection = (prefix === "" && COLLECTIONS.has(key)) || /^notes\.\*\.(reactions|hiddenPhotos)$/.test(name);
      paths(item, name, isCollection, out);
    }
  }
  return out;
}

/** Leaves of the model that hold a reader's default: "", 0, false, [] or undefined. */
function defaults(value: unknown, at = "model", out: string[] = []): string[] {
  if (value === undefined || value === "" || value === 0 || value === false) out.push(at);
  else if (Array.isArray(value)) {
    if (value.length === 0) out.push(at);
    value.forEach((v, i) => defaults(v, `${at}[${i}]`, out));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) defaults(v, `${at}.${k}`, out);
  }
  return out;
}

describe("the board Rust writes with every field", () => {
  it("holds exactly the paths BOARD_FIELDS names", () => {
    const found = paths(specimen());
    const fields = new Set<string>(BOARD_FIELDS);
    expect([...fields].filter((f) => !found.has(f)), "fields missing from the Rust specimen").toEqual([]);
    expect([...found].filter((f) => !fields.has(f)), "fields the TypeScript model does not know").toEqual([]);
    expect(fields.size).toBe(BOARD_FIELDS.length);
  });

  it("reads into a model with every field taken, none left at a default", () => {
    const model = readBoard(specimen());
    expect(model.schemaVersion).toBe(SCHEMA_VERSION);
    // Each collection of the specimen has entries, and every entry's every field is set: a
    // reader that drops a field leaves it undefined here. Default phases and categories only
    // fill the fields the specimen sets on all of them.
    const note = model.notes[0]!;
    expect(defaults(note, "note")).toEqual([]);
    expect(defaults(model.lab, "lab")).toEqual([]);
    expect(model.lab.pickLimit).toBe(5);
    expect(defaults(model.timeouts, "timeouts")).toEqual([]);
    expect(defaults(model.clusters, "clusters")).toEqual([]);
    expect(defaults(model.agreements, "agreements")).toEqual([]);
    expect(defaults(model.nextSteps, "nextSteps")).toEqual([]);
    expect(defaults(model.picks, "picks")).toEqual([]);
    expect(defaults(model.children, "children")).toEqual([]);
    expect(defaults(model.currentPhase, "currentPhase")).toEqual([]);
    // `order` 0 is a real value for the first phase and category.
    expect(defaults(model.phases.slice(1), "phases")).toEqual([]);
    expect(defaults(model.categories.slice(1), "categories")).toEqual([]);
    expect(note.reactions).toEqual(["afedcba9876543210fedcba98"]);
    expect(note.photos).toEqual([{ id: PHOTOS[0] }, { id: PHOTOS[1], hidden: true }]);
    expect(model.picks).toEqual([{ authorId: AUTHOR, noteId: "note-1", at: 1_764_014_500_000 }]);
  });
});

function board(): A.Doc<StoredBoard> {
  return A.change(A.init<StoredBoard>(), (d) => {
    Object.assign(d, { lab: { title: "t" }, notes: {}, picks: {}, nextSteps: {}, currentPhase: "final-debrief" });
    for (let i = 0; i < 10; i++) d.notes![`n${i}`] = { text: `note ${i}`, authorId: "x", createdAt: i };
  });
}

describe("picks", () => {
  it("are limited per person, counted per note, and ordered by count", () => {
    let doc = board();
    const results: string[] = [];
    doc = A.change(doc, (d) => {
      for (let i = 0; i < DEFAULT_PICK_LIMIT + 1; i++) results.push(togglePick(d, "ana", `n${i}`, 100 + i));
      togglePick(d, "ben", "n3", 200);
      togglePick(d, "cy", "n3", 201);
      togglePick(d, "ben", "n5", 202);
    });
    expect(results).toEqual([...Array(DEFAULT_PICK_LIMIT).fill("picked"), "limit"]);
    const model = readBoard(doc);
    expect(myPicks(model, "ana")).toEqual(["n0", "n1", "n2", "n3", "n4", "n5", "n6"]);
    expect(pickCounts(model).get("n3")).toBe(3);
    expect(pickedNotes(model).map((p) => [p.note.id, p.count]).slice(0, 2)).toEqual([["n3", 3], ["n5", 2]]);
    doc = A.change(doc, (d) => expect(togglePick(d, "ana", "n3", 300)).toBe("unpicked"));
    expect(pickCounts(readBoard(doc)).get("n3")).toBe(2);
    expect(A.change(doc, (d) => expect(togglePick(d, "ana", "missing", 1)).toBe("none"))).toBeDefined();
  });

  it("count only each person's first `pickLimit`, whatever was written", () => {
    let doc = board();
    doc = A.change(doc, (d) => {
      for (let i = 0; i < 10; i++) d.picks![pickKey("ana", `n${i}`)] = 1000 - i; // n9 first
      d.picks!["no-colon"] = 1;
      d.picks![pickKey("ana", "deleted-note")] = 0;
    });
    expect(myPicks(readBoard(doc), "ana")).toEqual(["n9", "n8", "n7", "n6", "n5", "n4", "n3"]);
    doc = A.change(doc, (d) => expect(setPickLimit(d, 3)).toBe(true));
    expect(myPicks(readBoard(doc), "ana")).toEqual(["n9", "n8", "n7"]);
    A.change(doc, (d) => {
      expect(setPickLimit(d, 0)).toBe(false);
      expect(setPickLimit(d, 2.5)).toBe(false);
      expect(setPickLimit(d, 3)).toBe(false);
    });
  });

  it("hidden notes are left out of the picked notes", () => {
    let doc = A.change(board(), (d) => {
      togglePick(d, "ana", "n1", 1);
      togglePick(d, "ana", "n2", 2);
      d.notes!.n1!.hidden = true;
    });
    expect(pickedNotes(readBoard(doc)).map((p) => p.note.id)).toEqual(["n2"]);
    doc = A.change(doc, (d) => delete d.notes!.n2);
    expect(readBoard(doc).picks.map((p) => p.noteId)).toEqual(["n1"]);
  });
});

describe("next steps", () => {
  const scalar = (s: string) => new A.ImmutableString(s);

  it("are added in the current phase and edited or removed only by their author", () => {
    let doc = A.change(board(), (d) => {
      expect(addNextStep(d, "s1", { text: "  Try wait time  ", authorId: "ana", authorName: "Ana" }, 10, scalar)).toBe(true);
      expect(addNextStep(d, "s2", { text: "   ", authorId: "ana", authorName: "Ana" }, 11, scalar)).toBe(false);
      expect(addNextStep(d, "s3", { text: "x".repeat(501), authorId: "ana", authorName: "Ana" }, 11, scalar)).toBe(false);
      expect(addNextStep(d, "s4", { text: "Model it", authorId: "ben", authorName: "Ben" }, 12, scalar)).toBe(true);
    });
    let model = readBoard(doc);
    expect(model.nextSteps).toEqual([
      { id: "s1", text: "Try wait time", authorId: "ana", authorName: "Ana", phase: "final-debrief", createdAt: 10 },
      { id: "s4", text: "Model it", authorId: "ben", authorName: "Ben", phase: "final-debrief", createdAt: 12 },
    ]);
    doc = A.change(doc, (d) => {
      expect(editNextStep(d, "s1", "ben", "taken over", 20, scalar)).toBe(false);
      expect(editNextStep(d, "s1", "ana", "Try wait time, 2 min", 20, scalar)).toBe(true);
      expect(removeNextStep(d, "s4", "ana")).toBe(false);
      expect(removeNextStep(d, "s4", "ben")).toBe(true);
    });
    model = readBoard(doc);
    expect(model.nextSteps.map((s) => [s.id, s.text, s.editedAt])).toEqual([["s1", "Try wait time, 2 min", 20]]);
  });
});

describe("a time-out undone", () => {
  it("is deleted by its caller only, and only while it runs", () => {
    let doc = A.change(A.init<RunDoc>(), (d) => {
      d.timeouts = { t1: { calledById: "ana", startedAt: 1 }, t2: { calledById: "ana", startedAt: 1, endedAt: 2 } };
    });
    doc = A.change(doc, (d) => {
      expect(undoTimeout(d, "t1", "ben")).toBe(false);
      expect(undoTimeout(d, "t2", "ana")).toBe(false);
      expect(undoTimeout(d, "t1", "ana")).toBe(true);
    });
    expect(Object.keys(doc.timeouts ?? {})).toEqual(["t2"]);
  });
});

describe("readBoard", () => {
  it("reads anything that is not a board as an empty one", () => {
    for (const doc of [undefined, null, 3, "board", [], { notes: 5, picks: "x", nextSteps: [1], lab: 7 }]) {
      const model = readBoard(doc);
      expect(model.notes).toEqual([]);
      expect(model.picks).toEqual([]);
      expect(model.nextSteps).toEqual([]);
      expect(model.lab.pickLimit).toBe(DEFAULT_PICK_LIMIT);
    }
  });
});

describe("a note's photos", () => {
  const scalar = (s: string) => new A.ImmutableString(s);
  const id = (n: number) => n.toString(16).padStart(2, "0").repeat(32);
  const input = { text: "T. counted by 2s", category: "c", authorName: "Ana", authorId: "ana", createdAt: 1 };

  it("are read in order: valid ids only, each once, at most four, hidden ones marked", () => {
    const doc = A.change(A.init<StoredBoard>(), (d) => {
      d.notes = {
        n1: { text: "a", photos: [id(1), "NOT-A-PHOTO", id(2).toUpperCase(), 7, id(2), id(1), id(3), id(4), id(5)].map((v) => (typeof v === "string" ? scalar(v) : v)) },
        n2: { text: "b", photos: [scalar(id(1)), scalar(id(2))], hiddenPhotos: { [id(2)]: true, [id(1)]: false, [id(9)]: true } },
        n3: { text: "c" },
        n4: { text: "d", photos: "x", hiddenPhotos: [id(1)] },
        n5: { text: "e", photos: [scalar("nope")] },
      };
    });
    const notes = new Map(readBoard(doc).notes.map((n) => [n.id, n]));
    expect(notes.get("n1")!.photos).toEqual([{ id: id(1) }, { id: id(2) }, { id: id(3) }, { id: id(4) }]);
    expect(notes.get("n2")!.photos).toEqual([{ id: id(1) }, { id: id(2), hidden: true }]);
    // An older note, or one with nothing valid, has none.
    for (const n of ["n3", "n4", "n5"]) expect(notes.get(n)!.photos).toBeUndefined();
  });

  it("are set when the note is created, as scalar ids", () => {
    const note = buildNote({ ...input, photos: [id(1), id(2)] }, scalar);
    expect(note.photos!.map(String)).toEqual([id(1), id(2)]);
    expect(note.photos![0]).toBeInstanceOf(A.ImmutableString);
    expect("photos" in buildNote(input, scalar)).toBe(false);
    expect("photos" in buildNote({ ...input, photos: [] }, scalar)).toBe(false);
    const doc = A.change(A.init<StoredBoard>(), (d) => {
      d.notes = { n: buildNote({ ...input, photos: [id(1), id(2)] }, scalar) };
    });
    expect(readBoard(doc).notes[0]!.photos).toEqual([{ id: id(1) }, { id: id(2) }]);
    for (const photos of [[id(1), id(2), id(3), id(4), id(5)], ["abc"], [id(0xab).toUpperCase()], [id(1), id(1)]]) {
      expect(() => buildNote({ ...input, photos }, scalar)).toThrow(RangeError);
    }
  });

  it("are hidden and shown one at a time by the facilitator, only those the note has", () => {
    let doc = A.change(A.init<StoredBoard>(), (d) => {
      d.notes = { n: buildNote({ ...input, photos: [id(1), id(2)] }, scalar) };
    });
    doc = A.change(doc, (d) => {
      expect(setPhotoHidden(d, "n", id(2), true)).toBe(true);
      expect(setPhotoHidden(d, "n", id(2), true)).toBe(false);
      expect(setPhotoHidden(d, "n", id(3), true)).toBe(false);
      expect(setPhotoHidden(d, "missing", id(1), true)).toBe(false);
      expect(setPhotoHidden(d, "n", id(1), false)).toBe(false);
    });
    expect(readBoard(doc).notes[0]!.photos).toEqual([{ id: id(1) }, { id: id(2), hidden: true }]);
    doc = A.change(doc, (d) => expect(setPhotoHidden(d, "n", id(2), false)).toBe(true));
    expect(readBoard(doc).notes[0]!.photos).toEqual([{ id: id(1) }, { id: id(2) }]);
  });
});
