import { describe, expect, it } from "vitest";
import { MAX_NOTE_CHARS } from "../validate";
import { charCount, tooLongText } from "./composer";
import { nextStepProblem } from "./nextsteps";

describe("how long a note may be", () => {
  it("counts characters as people do", () => {
    expect(charCount("8 + 5 = 13 🙂")).toBe(12);
  });

  it("says why a note is too long and by how much, and nothing when it fits", () => {
    expect(tooLongText(MAX_NOTE_CHARS)).toBeUndefined();
    expect(tooLongText(5000)).toBe(
      "Too long to send: a note holds up to 2,000 characters, so that it fits on the board. Shorten it by 3,000, or send it as two notes.",
    );
  });

  it("refuses a next step over 500 characters with the reason", () => {
    expect(nextStepProblem("x".repeat(500))).toBeUndefined();
    expect(nextStepProblem(`  ${"x".repeat(500)}  `)).toBeUndefined();
    expect(nextStepProblem("x".repeat(520))).toBe("Too long to save: a next step holds up to 500 characters. Shorten it by 20.");
  });
});
