// Reconnect delays with jitter, so a dozen phones do not all reconnect in the same instant after
// the server restarts or the Wi-Fi comes back.

export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 15_000;

/**
 * The delay before reconnect attempt `attempt` (0 for the first try after a drop): "equal
 * jitter", between half and all of min(max, base * 2^attempt). `random` is in [0, 1).
 */
export function backoffDelay(attempt: number, random: number, base = BACKOFF_BASE_MS, max = BACKOFF_MAX_MS): number {
  const cap = Math.min(max, base * 2 ** Math.max(0, Math.min(attempt, 30)));
  return Math.round(cap / 2 + (cap / 2) * random);
}

/** A short random delay for reconnects that have a clear reason (back online, page visible). */
export function nudgeDelay(random: number, spreadMs = 1_000): number {
  return Math.round(100 + spreadMs * random);
}
