import { describe, expect, it } from "vitest";
import { organizerFromHash, parseRoute, pathFor, syncUrl } from "./routes";

describe("parseRoute", () => {
  it("knows every app route", () => {
    expect(parseRoute("/")).toEqual({ page: "join" });
    expect(parseRoute("/j/WM6C9X")).toEqual({ page: "join", code: "WM6C9X" });
    expect(parseRoute("/new")).toEqual({ page: "new" });
    expect(parseRoute("/labs")).toEqual({ page: "labs" });
    expect(parseRoute("/labs/")).toEqual({ page: "labs" });
    expect(parseRoute("/lab/3vonzeprz5c5")).toEqual({ page: "observer", labId: "3vonzeprz5c5" });
    expect(parseRoute("/lab/3vonzeprz5c5/board")).toEqual({ page: "board", labId: "3vonzeprz5c5" });
  });

  it("ignores trailing slashes", () => {
    expect(parseRoute("/new/")).toEqual({ page: "new" });
    expect(parseRoute("/lab/abc/board/")).toEqual({ page: "board", labId: "abc" });
    expect(parseRoute("/lab/abc/record")).toEqual({ page: "record", labId: "abc" });
  });

  it("refuses anything else", () => {
    for (const p of ["/lab", "/lab/ABC!", "/lab/abc/other", "/j", "/j/a/b", "/assets/x.js", "/%E0%A4%A", "/new/x", "/labs/x"]) {
      expect(parseRoute(p), p).toEqual({ page: "not-found" });
    }
  });

  it("round-trips paths", () => {
    for (const p of ["/", "/j/ABC234", "/new", "/lab/abc123", "/lab/abc123/board", "/lab/abc123/record"]) {
      expect(pathFor(parseRoute(p))).toBe(p);
    }
  });
});

describe("organizerFromHash", () => {
  it("reads the token the server prints", () => {
    expect(organizerFromHash("#organizer=3q2-abc_DEF")).toBe("3q2-abc_DEF");
    expect(organizerFromHash("organizer=x")).toBe("x");
  });
  it("is undefined without one", () => {
    expect(organizerFromHash("")).toBeUndefined();
    expect(organizerFromHash("#organizer=")).toBeUndefined();
    expect(organizerFromHash("#other=1")).toBeUndefined();
  });
});

describe("syncUrl", () => {
  it("uses the page's host and scheme and escapes the token", () => {
    expect(syncUrl("lab1", "a+b/c", { protocol: "http:", host: "192.168.1.20:8080" })).toBe(
      "ws://192.168.1.20:8080/sync?lab=lab1&token=a%2Bb%2Fc",
    );
    expect(syncUrl("l&b", "t", { protocol: "https:", host: "lab.example" })).toBe("wss://lab.example/sync?lab=l%26b&token=t");
  });
});
