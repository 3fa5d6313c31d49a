import { describe, expect, it } from "vitest";
import { isLabEndedError, notSentText } from "./ended";

describe("an ended lab", () => {
  it("is recognised by the server's error words, and only by an error", () => {
    expect(isLabEndedError({ type: "error", message: "sync message for document 4Qh3: this lab has ended; nothing more can be added" })).toBe(true);
    expect(isLabEndedError({ type: "error", message: "sync message refused: change 12ab is not allowed" })).toBe(false);
    expect(isLabEndedError({ type: "sync", message: "this lab has ended" })).toBe(false);
    expect(isLabEndedError({ type: "error" })).toBe(false);
    expect(isLabEndedError(undefined)).toBe(false);
    expect(isLabEndedError("this lab has ended")).toBe(false);
  });

  it("counts the notes that were not sent", () => {
    expect(notSentText(0)).toBe("");
    expect(notSentText(1)).toBe("1 note was not sent. It stays on this phone.");
    expect(notSentText(3)).toBe("3 notes were not sent. They stay on this phone.");
  });
});
