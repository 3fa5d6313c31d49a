import { describe, expect, it } from "vitest";
import { exportPath, filenameFromDisposition } from "./download";

describe("exportPath", () => {
  it("asks for the format and the table", () => {
    expect(exportPath("lab1", "json")).toBe("/api/labs/lab1/export?format=json");
    expect(exportPath("lab1", "csv", "nextSteps")).toBe("/api/labs/lab1/export?format=csv&table=nextSteps");
    expect(exportPath("lab1", "zip")).toBe("/api/labs/lab1/export?format=zip");
  });
});

describe("filenameFromDisposition", () => {
  it("reads the name the server gives", () => {
    expect(filenameFromDisposition('attachment; filename="making-ten-notes.csv"', "x")).toBe("making-ten-notes.csv");
    expect(filenameFromDisposition("attachment; filename=making-ten.automerge", "x")).toBe("making-ten.automerge");
    expect(filenameFromDisposition('attachment; filename="a\\"b.csv"', "x")).toBe('a"b.csv');
  });

  it("prefers the encoded name", () => {
    expect(filenameFromDisposition("attachment; filename=\"plain.json\"; filename*=UTF-8''d%C3%A9cimales.json", "x")).toBe("décimales.json");
  });

  it("falls back when there is no usable name", () => {
    expect(filenameFromDisposition(null, "lab1-notes.csv")).toBe("lab1-notes.csv");
    expect(filenameFromDisposition("attachment", "fallback.json")).toBe("fallback.json");
    expect(filenameFromDisposition('attachment; filename=""', "fallback.json")).toBe("fallback.json");
    expect(filenameFromDisposition("attachment; filename*=UTF-8''%E0%A4%A", "fallback.json")).toBe("fallback.json");
  });

  it("keeps no folder, hidden-file dot or control character", () => {
    expect(filenameFromDisposition('attachment; filename="../../etc/passwd"', "x")).toBe("passwd");
    expect(filenameFromDisposition('attachment; filename=".profile"', "x")).toBe("profile");
    expect(filenameFromDisposition('attachment; filename="a\u0007b.csv"', "x")).toBe("ab.csv");
  });
});
