// The labs home page's logic, apart from the DOM: which labs this device lists and with which
// token, and how a lab's summary reads in words.

import type { LabSummary } from "./api";
import type { LabAccess } from "./store";

/**
 * What this device lists: every lab on the server when it holds the organizer token, else the
 * labs it signed in to as facilitator (newest sign-in first), each with what it needs to ask.
 */
export type Listing = { kind: "organizer"; token: string } | { kind: "facilitator"; labs: LabAccess[] };

export function chooseListing(organizerToken: string | undefined, recent: LabAccess[]): Listing {
  if (organizerToken) return { kind: "organizer", token: organizerToken };
  return { kind: "facilitator", labs: recent.filter((l) => l.role === "facilitator" && (l.token || l.facilitatorKey)) };
}

/** "1 phone", "4 phones". */
export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

const DAY: Intl.DateTimeFormatOptions = { day: "numeric", month: "short", year: "numeric" };

/** A moment (ms since the epoch) as a day in this device's time zone, e.g. "4 Dec 2026". */
export function dayText(ms: number, locale?: string, timeZone?: string): string {
  return new Date(ms).toLocaleDateString(locale, { ...DAY, timeZone });
}

/** A lab's `YYYY-MM-DD` date as a day ("23 Nov 2026"), or as typed if it is no such day. */
export function labDateText(date: string, locale?: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return date;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(ms) ? date : dayText(ms, locale, "UTC");
}

/** The lab's school, grade and date, each in words ("Hillside", "Grade 2", "23 Nov 2026"). */
export function detailsParts(lab: Pick<LabSummary, "school" | "grade" | "date">, locale?: string): string[] {
  const parts: string[] = [];
  if (lab.school) parts.push(lab.school);
  if (lab.grade) parts.push(/^(k|\d+)$/i.test(lab.grade) ? `Grade ${lab.grade}` : lab.grade);
  if (lab.date) parts.push(labDateText(lab.date, locale));
  return parts;
}

/** The lab's school, grade and date, as one line ("Hillside · Grade 2 · 23 Nov 2026"). */
export function detailsText(lab: Pick<LabSummary, "school" | "grade" | "date">, locale?: string): string {
  return detailsParts(lab, locale).join(" · ");
}

/** "Active", or "Ended on 4 Dec 2026". */
export function stateText(lab: Pick<LabSummary, "endedAt">, locale?: string, timeZone?: string): string {
  return lab.endedAt === null ? "Active" : `Ended on ${dayText(lab.endedAt, locale, timeZone)}`;
}

/** "Deleted on 2 Jun 2027" when the server will delete the lab, else undefined. */
export function deleteText(lab: Pick<LabSummary, "deleteAt">, locale?: string, timeZone?: string): string | undefined {
  return lab.deleteAt === null ? undefined : `Deleted on ${dayText(lab.deleteAt, locale, timeZone)}`;
}

/** "12 notes (1 hidden)", "1 note", or why there is no count. */
export function notesText(lab: Pick<LabSummary, "notes" | "hiddenNotes">): string {
  if (lab.notes === null) return "Notes not counted (try again)";
  const hidden = lab.hiddenNotes ? ` (${lab.hiddenNotes} hidden)` : "";
  return `${plural(lab.notes, "note", "notes")}${hidden}`;
}

/** The downloads a lab offers, in the order of its Export menu. */
export const EXPORTS: ReadonlyArray<{ label: string; format: "json" | "csv" | "automerge" | "html" | "zip"; table?: string }> = [
  { label: "Research data (JSON)", format: "json" },
  { label: "Notes (CSV)", format: "csv", table: "notes" },
  { label: "Time-outs (CSV)", format: "csv", table: "timeouts" },
  { label: "Agreements (CSV)", format: "csv", table: "agreements" },
  { label: "Next steps (CSV)", format: "csv", table: "nextSteps" },
  { label: "Board archive (Automerge)", format: "automerge" },
  { label: "Record (HTML)", format: "html" },
  { label: "Everything, with photos (.zip)", format: "zip" },
];
