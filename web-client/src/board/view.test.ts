import { describe, expect, it } from "vitest";
import type { Note } from "../board";
import { filterNotes, type BoardModel } from "./view";

const note = (id: string, extra: Partial<Note> = {}): Note => ({ id, text: id, category: "c", authorName: "A", authorId: "a", createdAt: 1, children: [], ...extra });

const model = (notes: Note[]): BoardModel => ({
  schemaVersion: 3,
  lab: { title: "", school: "", grade: "", date: "", problemOfPractice: "", mathematicalGoal: "", lessonTask: "", pickLimit: 7 },
  categories: [],
  phases: [],
  timeouts: [],
  notes,
  clusters: [],
  agreements: [],
  children: [],
  picks: [],
  nextSteps: [],
});

describe("filterNotes", () => {
  const m = model([
    note("l1", { phase: "lesson-1" }),
    note("l2", { phase: "lesson-2", children: ["M.L."] }),
    note("hid", { phase: "lesson-2", hidden: true }),
    note("none"),
  ]);
  const ids = (notes: Note[]) => notes.map((n) => n.id);

  it("shows every visible note without a phase or child", () => {
    expect(ids(filterNotes(m, { showHidden: false, presenter: false }))).toEqual(["l1", "l2", "none"]);
  });
  it("shows hidden notes only when asked", () => {
    expect(ids(filterNotes(m, { showHidden: true, presenter: false }))).toEqual(["l1", "l2", "hid", "none"]);
  });
  it("keeps one phase apart from the others", () => {
    expect(ids(filterNotes(m, { phase: "lesson-2", showHidden: false, presenter: false }))).toEqual(["l2"]);
    expect(ids(filterNotes(m, { phase: "lesson-1", showHidden: true, presenter: false }))).toEqual(["l1"]);
  });
  it("keeps the notes about one child", () => {
    expect(ids(filterNotes(m, { child: "M.L.", showHidden: false, presenter: false }))).toEqual(["l2"]);
  });
});
