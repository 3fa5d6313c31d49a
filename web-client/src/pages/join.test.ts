import { describe, expect, it } from "vitest";
import { ApiError, UNREACHABLE } from "../api";
import { facilitateErrorText, joinErrorText } from "./join";

describe("join errors in words", () => {
  it("never shows the server's raw text", () => {
    const raw = "no lab has this join code; check it or ask the facilitator for the current one";
    const shown = joinErrorText(new ApiError(raw, 404), "ZZZ234");
    expect(shown).toBe("No lab has the code ZZZ234. Check the code on the board (it can change), or ask the facilitator for it.");
    expect(joinErrorText(new ApiError("too many attempts", 429, 30), "ZZZ234")).toBe("Too many tries. Wait 30 seconds, then try again.");
    expect(joinErrorText(new ApiError("too many attempts", 429, 300), "ZZZ234")).toBe("Too many tries. Wait 5 minutes, then try again.");
    expect(joinErrorText(new ApiError(UNREACHABLE, 0), "ZZZ234")).toBe(UNREACHABLE);
    expect(joinErrorText(new ApiError("boom", 500), "ZZZ234")).toMatch(/^The Labboard server/);
    expect(facilitateErrorText(new ApiError("bad key", 401))).toMatch(/^That lab id and facilitator key do not match/);
  });
});
