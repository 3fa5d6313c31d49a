// What the composer does about a child's full name in a note: offer initials instead.

import { possibleFullNames } from "../validate";

/** "Maria Lopez" -> "M.L."; "Ana-Sofia O'Brien" -> "A.O.". */
export function initialsOf(fullName: string): string {
  return fullName
    .split(/\s+/)
    .filter((w) => w !== "")
    .map((w) => `${[...w][0]!.toUpperCase()}.`)
    .join("");
}

/** The text with every name that looks like a child's full name replaced by its initials. */
export function withInitials(text: string): string {
  let out = text;
  for (const name of possibleFullNames(text)) out = out.split(name).join(initialsOf(name));
  return out;
}
