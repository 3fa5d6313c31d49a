import { describe, expect, it } from "vitest";
import { possibleFullNames } from "../validate";
import { initialsOf, withInitials } from "./names";

describe("initials instead of a child's full name", () => {
  it("makes initials", () => {
    expect(initialsOf("Maria Lopez")).toBe("M.L.");
    expect(initialsOf("Ana-Sofia O'Brien")).toBe("A.O.");
  });

  it("replaces every full name, and what is left no longer looks like one", () => {
    const text = "Maria Lopez said 13. Then Maria Lopez and Jon Park counted on.";
    const fixed = withInitials(text);
    expect(fixed).toBe("M.L. said 13. Then M.L. and J.P. counted on.");
    expect(possibleFullNames(fixed)).toEqual([]);
    expect(withInitials("T. counted on from 8")).toBe("T. counted on from 8");
  });
});
