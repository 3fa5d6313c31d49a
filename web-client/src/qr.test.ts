import { describe, expect, it } from "vitest";
import { qrPath } from "./qr";

describe("qrPath", () => {
  it("draws a join link as a QR code", () => {
    const { d, size } = qrPath("http://192.168.1.20:8080/j/WM6C9X");
    expect(size).toBeGreaterThanOrEqual(25); // version 2 or more: 21 + 4 per version
    expect((size - 17) % 4).toBe(0);
    expect(d).toMatch(/^M0 0h7v1h-7z/); // the top-left finder pattern's first row
    expect(qrPath("http://192.168.1.20:8080/j/WM6C9X").d).toBe(d);
  });
});
