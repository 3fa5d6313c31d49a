// Input rules the server also enforces, checked early so people get a clear message offline.

export const CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
export const JOIN_CODE_LENGTH = 6;
export const MAX_NAME_CHARS = 60;
export const MAX_FIELD_CHARS = 120;
export const MAX_NOTE_CHARS = 2000;

/** A join code as typed, cleaned while typing: upper case, no spaces or dashes, at most 6. */
export function cleanJoinCodeInput(input: string): string {
  return input
    .toUpperCase()
    .replace(/[\s-]+/g, "")
    .slice(0, JOIN_CODE_LENGTH);
}

/** Why a join code cannot be right, or undefined when it can. */
export function joinCodeProblem(code: string): string | undefined {
  const clean = cleanJoinCodeInput(code);
  if (clean.length === 0) return "Type the 6-character join code shown on the board.";
  if (clean.length !== JOIN_CODE_LENGTH || [...clean].some((c) => !CODE_ALPHABET.includes(c))) {
    return "A join code has 6 letters and digits (never 0, O, 1, I or L). Check it on the board.";
  }
  return undefined;
}

function charCount(text: string): number {
  return [...text].length;
}

// Control characters the server refuses in names and lab fields.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a display name cannot be used, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  const clean = name.trim();
  if (clean === "") return "Type your name: it is shown with your notes.";
  if (charCount(clean) > MAX_NAME_CHARS) return `Use at most ${MAX_NAME_CHARS} characters.`;
  if (CONTROL.test(clean)) return "Use letters, digits and punctuation only.";
  return undefined;
}

export interface LabForm {
  title: string;
  school: string;
  grade: string;
  date: string;
}

/** The first problem with a new lab's fields, or undefined when the server should accept them. */
export function labFormProblem(form: LabForm): string | undefined {
  if (form.title.trim() === "") return "Give the lab a title.";
  for (const [label, value] of [
    ["Title", form.title],
    ["School", form.school],
    ["Grade", form.grade],
  ] as const) {
    if (charCount(value.trim()) > MAX_FIELD_CHARS) return `${label}: use at most ${MAX_FIELD_CHARS} characters.`;
    if (CONTROL.test(value)) return `${label}: use letters, digits and punctuation only.`;
  }
  if (form.date !== "" && !isCalendarDate(form.date)) return "Date: pick a day (YYYY-MM-DD).";
  return undefined;
}

/** `YYYY-MM-DD` of a day that exists. */
export function isCalendarDate(date: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return d <= days;
}

/** A facilitator key as typed, in the server's canonical form (`ABCD-EFGH-…`). */
export function normalizeFacilitatorKey(input: string): string {
  const chars = input.toUpperCase().replace(/[^A-Z0-9]/g, "");
  return (chars.match(/.{1,4}/g) ?? []).join("-");
}

/** A lab id as typed (they are 12 lower-case letters and digits). */
export function normalizeLabId(input: string): string {
  return input.trim().toLowerCase();
}

/** The note text to store, or undefined when there is nothing to send. */
export function cleanNoteText(text: string): string | undefined {
  const clean = text.replace(/\r\n?/g, "\n").trim();
  if (clean === "") return undefined;
  return [...clean].slice(0, MAX_NOTE_CHARS).join("");
}

// Capitalised words that often start a sentence or name a role, so two of them in a row are not
// a child's full name ("Then Maria", "The Teacher").
const NOT_NAMES = new Set(
  (
    "a an and as at after before but by during each first for from he her his i if in it its " +
    "later next no not now of on once one or our she so some that the their then there these " +
    "they this those to two three we when where which while who why with yes you " +
    "student students teacher teachers child children kid kids group table partner class " +
    "monday tuesday wednesday thursday friday mr mrs ms miss dr " +
    "ok okay great good nice wow look see saw"
  ).split(" "),
);

/**
 * Words in a note that look like a child's full name (two capitalised words in a row, such as
 * "Maria Lopez"), so the observer can be reminded to use initials or an alias instead.
 */
export function possibleFullNames(text: string): string[] {
  const found: string[] = [];
  const word = String.raw`\p{Lu}\p{Ll}*(?:['’]\p{Lu})?\p{Ll}+(?:-\p{Lu}?\p{Ll}+)?`;
  const re = new RegExp(String.raw`(?<!\p{L})(${word})[ \t]+(${word})(?!\p{L})`, "gu");
  for (const m of text.matchAll(re)) {
    const [, first, last] = m;
    if (NOT_NAMES.has(first.toLowerCase()) || NOT_NAMES.has(last.toLowerCase())) continue;
    found.push(`${first} ${last}`);
  }
  return found;
}

/**
 * Whether a child's alias looks like a real name: "full" for a first and last name ("Maria
 * Lopez"), "name" for one capitalised word of four letters or more ("Maria"); undefined for
 * initials and short aliases ("M.", "ML", "Table 3 girl" is fine too).
 */
export function aliasLooksLikeName(alias: string): "full" | "name" | undefined {
  const clean = alias.trim();
  if (possibleFullNames(clean).length > 0) return "full";
  if (/^\p{Lu}\p{Ll}{3,}$/u.test(clean) && !NOT_NAMES.has(clean.toLowerCase())) return "name";
  return undefined;
}
