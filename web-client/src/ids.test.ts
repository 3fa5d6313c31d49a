import { describe, expect, it } from "vitest";
import { randomUuid } from "./ids";

describe("randomUuid", () => {
  it("makes v4 UUIDs without crypto.randomUUID", () => {
    const id = randomUuid();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(randomUuid((b) => b.fill(0))).toBe("00000000-0000-4000-8000-000000000000");
    expect(new Set(Array.from({ length: 100 }, () => randomUuid())).size).toBe(100);
  });
});
