import { describe, expect, it } from "vitest";
import { backoffDelay, nudgeDelay } from "./backoff";

describe("backoff", () => {
  it("doubles up to the cap, with jitter between half and all of it", () => {
    expect(backoffDelay(0, 0)).toBe(500);
    expect(backoffDelay(0, 0.999)).toBeLessThanOrEqual(1000);
    expect(backoffDelay(1, 0)).toBe(1000);
    expect(backoffDelay(3, 0)).toBe(4000);
    expect(backoffDelay(10, 0)).toBe(7_500);
    expect(backoffDelay(100, 0.999)).toBeLessThanOrEqual(15_000);
  });

  it("spreads twelve phones out", () => {
    const delays = Array.from({ length: 12 }, (_, i) => backoffDelay(2, i / 12));
    expect(new Set(delays).size).toBe(12);
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(1500);
  });

  it("nudges quickly but not at once", () => {
    expect(nudgeDelay(0)).toBe(100);
    expect(nudgeDelay(0.999)).toBeLessThanOrEqual(1100);
  });
});
