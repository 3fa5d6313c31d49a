import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { buildNote } from "./board";
import { callTimeout, endTimeouts, setCurrentPhase } from "./labrun";
import { readBoard, type StoredBoard } from "./model";
import { boardAt, changesUpTo, momentAt, moments, span } from "./replay";

const scalar = (s: string) => new A.ImmutableString(s);
/** 10:00:00 UTC on the day of a lab, in seconds (Automerge's change time). */
const T0 = Date.UTC(2026, 10, 23, 10, 0, 0) / 1000;
const NOW = T0 + 24 * 3600;

/** The board as the server creates it; its Rust writes carry no time (0) unless given one. */
function serverBoard(time = 0): A.Doc<StoredBoard> {
  return A.change(A.init<StoredBoard>({ actor: "00aa" }), { time }, (d) => {
    d.schemaVersion = 3;
    d.lab = { title: "Making ten" };
    d.categories = { strategies: { label: "Strategies", color: "#16a34a", order: 0 } };
    d.notes = {};
    d.phases = {
      "lesson-1": { label: "Lesson 1", order: 1 },
      "debrief-1": { label: "Debrief 1", order: 2 },
    };
    d.timeouts = {};
    d.agreements = {};
  });
}

/** A device's copy of `doc`, with its own actor. */
function copy(doc: A.Doc<StoredBoard>, actor: string): A.Doc<StoredBoard> {
  return A.merge(A.init<StoredBoard>({ actor }), A.clone(doc));
}

function note(doc: A.Doc<StoredBoard>, id: string, text: string, time: number): A.Doc<StoredBoard> {
  return A.change(doc, { time }, (d) => {
    (d.notes as Record<string, unknown>)[id] = buildNote({ text, category: "strategies", authorName: id, authorId: "a", createdAt: time * 1000 }, scalar);
  });
}

/** What a replica holds that received exactly the changes its authors made up to `t`. */
function replicaUpTo(doc: A.Doc<StoredBoard>, t: number) {
  const made = A.getAllChanges(doc).filter((c) => A.decodeChange(c).time <= t);
  const [replica] = A.applyChanges(A.init<StoredBoard>(), made);
  return readBoard(replica);
}

/** A lab of three devices with well-set clocks: a facilitator and two phones writing concurrently. */
function lab(): A.Doc<StoredBoard> {
  let facilitator = copy(serverBoard(T0), "0f");
  facilitator = A.change(facilitator, { time: T0 + 60 }, (d) => void setCurrentPhase(d, "lesson-1", (T0 + 60) * 1000, scalar));
  let p1 = copy(facilitator, "01");
  let p2 = copy(facilitator, "02");
  p1 = note(p1, "n1", "counted by 2s", T0 + 120);
  p2 = note(p2, "n2", "regrouped into tens", T0 + 180);
  p1 = note(p1, "n3", "drew a number line", T0 + 240);
  // The time-out: called by the facilitator, who has seen p1's first note.
  facilitator = A.merge(facilitator, p1);
  facilitator = A.change(facilitator, { time: T0 + 300 }, (d) => void callTimeout(d, "t1", { name: "Fran", deviceId: "0f" }, (T0 + 300) * 1000, scalar));
  p2 = A.merge(p2, facilitator);
  p2 = note(p2, "n4", "during the time-out", T0 + 330);
  facilitator = A.merge(facilitator, p2);
  facilitator = A.change(facilitator, { time: T0 + 400 }, (d) => void endTimeouts(d, (T0 + 400) * 1000));
  facilitator = A.change(facilitator, { time: T0 + 600 }, (d) => void setCurrentPhase(d, "debrief-1", (T0 + 600) * 1000, scalar));
  return A.merge(facilitator, p1);
}

describe("replay", () => {
  it("shows at every moment what a replica with only the changes made up to then holds", () => {
    const doc = lab();
    const all = moments(doc, NOW);
    expect(all.length).toBe(A.getAllChanges(doc).length);
    for (const t of [T0, T0 + 59, T0 + 60, T0 + 150, T0 + 180, T0 + 250, T0 + 300, T0 + 330, T0 + 399, T0 + 400, T0 + 600, NOW]) {
      expect(readBoard(boardAt(doc, t, all)), `at +${t - T0}s`).toEqual(replicaUpTo(doc, t));
    }
    expect(readBoard(boardAt(doc, T0 + 250, all)).notes.map((n) => n.id).sort()).toEqual(["n1", "n2", "n3"]);
    expect(readBoard(boardAt(doc, T0 + 300, all)).timeouts.map((t) => [t.id, t.endedAt])).toEqual([["t1", undefined]]);
    expect(readBoard(boardAt(doc, NOW, all))).toEqual(readBoard(doc));
  });

  it("puts the server's timeless first change at the start and orders moments by time", () => {
    let doc = copy(serverBoard(0), "0f");
    doc = note(doc, "n1", "first", T0 + 60);
    doc = note(doc, "n2", "second", T0 + 90);
    const all = moments(doc, NOW);
    expect(span(all)).toEqual({ start: T0 + 60, end: T0 + 90 });
    expect(all.map((m) => m.time)).toEqual([T0 + 60, T0 + 60, T0 + 90]);
    // The board before the lab's first moment is empty; at its first, the server's board is there.
    expect(readBoard(boardAt(doc, T0, all)).lab.title).toBe("");
    expect(readBoard(boardAt(doc, T0 + 60, all)).lab.title).toBe("Making ten");
    expect(readBoard(boardAt(doc, T0 + 60, all)).notes.map((n) => n.id)).toEqual(["n1"]);
    expect(all.map((m) => m.time)).toEqual([...all.map((m) => m.time)].sort((a, b) => a - b));
  });

  it("never shows a change before the changes it builds on, whatever its author's clock", () => {
    let base = copy(serverBoard(), "0f");
    base = note(base, "n1", "first", T0 + 100);
    // A phone whose clock is ten minutes slow edits after seeing n1, and one with no clock.
    let slow = copy(base, "05");
    slow = note(slow, "n2", "slow clock", T0 - 500);
    slow = note(slow, "n3", "no clock", 0);
    const all = moments(slow, NOW);
    const at = (t: number) => readBoard(boardAt(slow, t, all)).notes.map((n) => n.id).sort();
    expect(at(T0)).toEqual([]);
    expect(at(T0 + 100)).toEqual(["n1", "n2", "n3"]);
    expect(all.map((m) => m.time)).toEqual([T0 + 100, T0 + 100, T0 + 100, T0 + 100]);
    expect(A.applyChanges(A.init<StoredBoard>(), changesUpTo(slow, T0 + 100, NOW))[0]).toEqual(slow);
  });

  it("takes a clock in the future as now, without stretching or breaking the lab", () => {
    let doc = copy(serverBoard(), "0f");
    doc = note(doc, "n1", "on time", T0 + 100);
    doc = note(doc, "n2", "from the future", NOW + 10 * 365 * 24 * 3600);
    doc = note(doc, "n3", "after it", T0 + 200);
    const all = moments(doc, NOW);
    expect(span(all)).toEqual({ start: T0 + 100, end: NOW });
    expect(readBoard(boardAt(doc, T0 + 150, all)).notes.map((n) => n.id)).toEqual(["n1"]);
    // n3 builds on n2, so it waits for it.
    expect(readBoard(boardAt(doc, T0 + 250, all)).notes.map((n) => n.id)).toEqual(["n1"]);
    expect(readBoard(boardAt(doc, NOW, all))).toEqual(readBoard(doc));
  });

  it("finds the moment of a time, and none before the first", () => {
    const all = [
      { time: 10, heads: ["a"] },
      { time: 20, heads: ["b"] },
      { time: 20, heads: ["c"] },
      { time: 30, heads: ["d"] },
    ];
    expect(momentAt(all, 9)).toBeUndefined();
    expect(momentAt(all, 10)?.heads).toEqual(["a"]);
    expect(momentAt(all, 25)?.heads).toEqual(["c"]);
    expect(momentAt(all, 99)?.heads).toEqual(["d"]);
    expect(momentAt([], 99)).toBeUndefined();
    expect(moments(A.init(), NOW)).toEqual([]);
  });
});
