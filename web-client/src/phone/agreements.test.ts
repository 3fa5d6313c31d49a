import { describe, expect, it } from "vitest";
import type { Agreement, Phase } from "../labrun";
import { agreementsToShow } from "./agreements";

const phase = (id: string, order: number): Phase => ({ id, label: id, order });
const phases = [phase("plan", 0), phase("lesson-1", 1), phase("debrief-1", 2), phase("lesson-2", 3), phase("final-debrief", 4)];
const agreement = (id: string, p: string): Agreement => ({ id, text: `text ${id}`, owner: "", phase: p, createdAt: 0, order: 0 });
const all = [agreement("a", "debrief-1"), agreement("b", "debrief-1"), agreement("c", "final-debrief")];
const at = (id: string) => agreementsToShow(phases, phases.find((p) => p.id === id), all);

describe("which agreements a phone shows", () => {
  it("in a lesson, what the debrief before it agreed to try", () => {
    expect(at("lesson-2")).toEqual({ heading: "What we are trying this time", agreements: all.slice(0, 2) });
    expect(at("lesson-1").agreements).toEqual([]);
    expect(at("plan").agreements).toEqual([]);
  });

  it("in a debrief, what it agreed so far; in the final debrief, everything", () => {
    expect(at("debrief-1")).toEqual({ heading: "Agreed so far", agreements: all.slice(0, 2) });
    expect(at("final-debrief")).toEqual({ heading: "Everything we agreed", agreements: all });
    expect(agreementsToShow(phases, undefined, all).agreements).toEqual([]);
  });
});
