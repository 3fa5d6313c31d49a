// A lab that has ended: how the phone recognises the server's refusal, and what it says about
// the notes the server never got.

/**
 * The words of the server's `error` for a change to the board of a lab that has ended (the
 * server's `ENDED_MESSAGE`: "this lab has ended; nothing more can be added").
 */
export const LAB_ENDED_ERROR = "this lab has ended";

/** Whether a decoded protocol message is the server refusing a change because the lab ended. */
export function isLabEndedError(message: unknown): boolean {
  if (!message || typeof message !== "object") return false;
  const { type, message: text } = message as { type?: unknown; message?: unknown };
  return type === "error" && typeof text === "string" && text.includes(LAB_ENDED_ERROR);
}

/** What the phone of an ended lab says about its notes the server never got ("" for none). */
export function notSentText(count: number): string {
  if (count <= 0) return "";
  return count === 1 ? "1 note was not sent. It stays on this phone." : `${count} notes were not sent. They stay on this phone.`;
}
