import { describe, expect, it } from "vitest";
import type { LabSummary } from "./api";
import { EXPORTS, chooseListing, dayText, deleteText, detailsText, labDateText, notesText, plural, stateText } from "./home";
import type { LabAccess } from "./store";

const access = (over: Partial<LabAccess>): LabAccess => ({
  labId: "lab1",
  docUrl: "automerge:abc",
  title: "Making ten",
  role: "facilitator",
  name: "Fac",
  updatedAt: 1,
  ...over,
});

const summary = (over: Partial<LabSummary> = {}): LabSummary => ({
  labId: "lab1",
  title: "Making ten",
  school: "Hillside",
  grade: "2",
  date: "2026-11-23",
  createdAt: 0,
  endedAt: null,
  state: "active",
  phones: 0,
  notes: 0,
  hiddenNotes: 0,
  deleteAt: null,
  ...over,
});

// 2026-12-04T22:30:00Z
const T = Date.UTC(2026, 11, 4, 22, 30);

describe("chooseListing", () => {
  it("lists every lab with the organizer token", () => {
    expect(chooseListing("org", [access({})])).toEqual({ kind: "organizer", token: "org" });
  });

  it("else lists the labs signed in to as facilitator, with a token or a key to renew it", () => {
    const withToken = access({ labId: "a", token: "t" });
    const withKey = access({ labId: "b", facilitatorKey: "K" });
    const neither = access({ labId: "c" });
    const observer = access({ labId: "d", role: "observer", token: "t" });
    expect(chooseListing(undefined, [withToken, withKey, neither, observer])).toEqual({ kind: "facilitator", labs: [withToken, withKey] });
    expect(chooseListing("", [])).toEqual({ kind: "facilitator", labs: [] });
  });
});

describe("summary texts", () => {
  it("counts in words", () => {
    expect(plural(1, "phone", "phones")).toBe("1 phone");
    expect(plural(0, "phone", "phones")).toBe("0 phones");
    expect(notesText(summary({ notes: 12, hiddenNotes: 1 }))).toBe("12 notes (1 hidden)");
    expect(notesText(summary({ notes: 1, hiddenNotes: 0 }))).toBe("1 note");
    expect(notesText(summary({ notes: null, hiddenNotes: null }))).toMatch(/not counted/);
  });

  it("says the state and the day of deletion in the device's time zone", () => {
    expect(stateText(summary(), "en-GB", "UTC")).toBe("Active");
    expect(stateText(summary({ endedAt: T }), "en-GB", "UTC")).toBe("Ended on 4 Dec 2026");
    // Already the next day in Auckland.
    expect(stateText(summary({ endedAt: T }), "en-GB", "Pacific/Auckland")).toBe("Ended on 5 Dec 2026");
    expect(deleteText(summary({ endedAt: T }))).toBeUndefined();
    expect(deleteText(summary({ endedAt: T, deleteAt: T + 180 * 86_400_000 }), "en-GB", "UTC")).toBe("Deleted on 2 Jun 2027");
    expect(dayText(T, "en-US", "UTC")).toBe("Dec 4, 2026");
  });

  it("writes the lab's details on one line, its date as the day it names", () => {
    expect(detailsText(summary(), "en-GB")).toBe("Hillside · Grade 2 · 23 Nov 2026");
    expect(detailsText(summary({ school: "", grade: "Grades 2 and 3", date: "" }))).toBe("Grades 2 and 3");
    expect(detailsText(summary({ school: "", grade: "", date: "" }))).toBe("");
    expect(labDateText("2026-11-23", "en-US")).toBe("Nov 23, 2026");
    expect(labDateText("soon")).toBe("soon");
  });

  it("offers every export the server has", () => {
    expect(EXPORTS.map((x) => `${x.format}${x.table ? `:${x.table}` : ""}`)).toEqual([
      "json",
      "csv:notes",
      "csv:timeouts",
      "csv:agreements",
      "csv:nextSteps",
      "automerge",
      "html",
      "zip",
    ]);
    expect(EXPORTS.find((x) => x.format === "zip")?.label).toBe("Everything, with photos (.zip)");
  });
});
