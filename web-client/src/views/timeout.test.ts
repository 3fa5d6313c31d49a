import { describe, expect, it } from "vitest";
import type { Timeout } from "../labrun";
import { canUndoTimeout, hasReached, timeoutCallerText, TIMEOUT_UNDO_MS } from "./timeout";

const T0 = 1_760_000_000_000;
const t: Timeout = { id: "t1", phase: "lesson-1", calledBy: "Ana", calledById: "a", startedAt: T0, note: "" };

describe("time-out banner", () => {
  it("says who called it, and that one only on this device has not reached the others", () => {
    expect(timeoutCallerText(t, "a", true)).toBe("called by you");
    expect(timeoutCallerText(t, "b", true)).toBe("called by Ana");
    expect(timeoutCallerText({ ...t, calledBy: "" }, "b", true)).toBe("called by someone");
    expect(timeoutCallerText(t, "a", false)).toBe("waiting to reach the others");
  });

  it("offers Undo to the caller only, for a few seconds", () => {
    expect(canUndoTimeout(t, "a", T0 + 1000)).toBe(true);
    expect(canUndoTimeout(t, "b", T0 + 1000)).toBe(false);
    expect(canUndoTimeout(t, "a", T0 + TIMEOUT_UNDO_MS)).toBe(false);
  });

  it("counts another device's time-out as reached: it came through the server", () => {
    expect(hasReached(t, "b", false)).toBe(true);
    expect(hasReached(t, "a", false)).toBe(false);
    expect(hasReached(t, "a", true)).toBe(true);
  });
});
