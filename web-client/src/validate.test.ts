import { describe, expect, it } from "vitest";
import {
  aliasLooksLikeName,
  cleanJoinCodeInput,
  cleanNoteText,
  isCalendarDate,
  joinCodeProblem,
  labFormProblem,
  MAX_NOTE_CHARS,
  nameProblem,
  normalizeFacilitatorKey,
  possibleFullNames,
} from "./validate";

describe("join codes", () => {
  it("are cleaned while typing", () => {
    expect(cleanJoinCodeInput("wm6c9x")).toBe("WM6C9X");
    expect(cleanJoinCodeInput("wm6 - c9x")).toBe("WM6C9X");
    expect(cleanJoinCodeInput("WM6C9XZZ")).toBe("WM6C9X");
  });
  it("accept 6 characters of the alphabet", () => {
    expect(joinCodeProblem("WM6C9X")).toBeUndefined();
    expect(joinCodeProblem("wm6-c9x")).toBeUndefined();
  });
  it("reject empty, short and ambiguous codes", () => {
    expect(joinCodeProblem("")).toMatch(/6-character/);
    expect(joinCodeProblem("WM6C9")).toMatch(/6 letters/);
    expect(joinCodeProblem("WM0C9X")).toMatch(/never 0/);
    expect(joinCodeProblem("WMIC9X")).toBeDefined();
    expect(joinCodeProblem("WMLC9X")).toBeDefined();
  });
});

describe("names", () => {
  it("must be present, short and printable", () => {
    expect(nameProblem("Ana")).toBeUndefined();
    expect(nameProblem("   ")).toBeDefined();
    expect(nameProblem("x".repeat(61))).toBeDefined();
    expect(nameProblem("é".repeat(60))).toBeUndefined();
    expect(nameProblem("a\u0007b")).toBeDefined();
  });
});

describe("lab form", () => {
  const ok = { title: "Making ten", school: "", grade: "", date: "" };
  it("needs a title", () => {
    expect(labFormProblem(ok)).toBeUndefined();
    expect(labFormProblem({ ...ok, title: "  " })).toMatch(/title/);
  });
  it("checks lengths and dates", () => {
    expect(labFormProblem({ ...ok, school: "s".repeat(121) })).toMatch(/School/);
    expect(labFormProblem({ ...ok, date: "2026-02-29" })).toMatch(/Date/);
    expect(labFormProblem({ ...ok, date: "2024-02-29" })).toBeUndefined();
  });
  it("knows the calendar", () => {
    expect(isCalendarDate("2026-11-23")).toBe(true);
    expect(isCalendarDate("2026-13-01")).toBe(false);
    expect(isCalendarDate("2026-04-31")).toBe(false);
    expect(isCalendarDate("2026-11-00")).toBe(false);
    expect(isCalendarDate("26-11-23")).toBe(false);
  });
});

describe("facilitator keys", () => {
  it("are normalised like the server does", () => {
    expect(normalizeFacilitatorKey("stvr br9g k3w5 t5wn")).toBe("STVR-BR9G-K3W5-T5WN");
    expect(normalizeFacilitatorKey("STVR-BR9G-K3W5-T5WN")).toBe("STVR-BR9G-K3W5-T5WN");
  });
});

describe("note text", () => {
  it("is trimmed and capped, and empty text is nothing to send", () => {
    expect(cleanNoteText("  counted by 2s \r\n")).toBe("counted by 2s");
    expect(cleanNoteText(" \n ")).toBeUndefined();
    expect([...cleanNoteText("x".repeat(MAX_NOTE_CHARS + 10))!].length).toBe(MAX_NOTE_CHARS);
  });
  it("keeps markup as it is (rendering makes it text)", () => {
    expect(cleanNoteText("<img src=x onerror=alert(1)>")).toBe("<img src=x onerror=alert(1)>");
  });
});

describe("full-name warning", () => {
  it("spots two capitalised words in a row", () => {
    expect(possibleFullNames("Maria Lopez counted by 2s")).toEqual(["Maria Lopez"]);
    expect(possibleFullNames("then José Núñez regrouped")).toEqual(["José Núñez"]);
    expect(possibleFullNames("Zoë O'Brien said ten")).toEqual(["Zoë O'Brien"]);
  });
  it("stays quiet for initials, aliases and sentence starts", () => {
    expect(possibleFullNames("T. counted by 2s, then regrouped into 10s")).toEqual([]);
    expect(possibleFullNames("M.L. used a number line")).toEqual([]);
    expect(possibleFullNames("Then Maria used cubes")).toEqual([]);
    expect(possibleFullNames("The Teacher asked why")).toEqual([]);
    expect(possibleFullNames("Student B drew ten frames")).toEqual([]);
  });
});

describe("aliasLooksLikeName", () => {
  it("tells full names and first names from initials and aliases", () => {
    expect(aliasLooksLikeName("Maria Lopez")).toBe("full");
    expect(aliasLooksLikeName("Maria")).toBe("name");
    expect(aliasLooksLikeName("M.")).toBeUndefined();
    expect(aliasLooksLikeName("ML")).toBeUndefined();
    expect(aliasLooksLikeName("Leo")).toBeUndefined();
    expect(aliasLooksLikeName("red shirt")).toBeUndefined();
    expect(aliasLooksLikeName("Student")).toBeUndefined();
  });
});
