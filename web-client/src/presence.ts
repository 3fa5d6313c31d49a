// Who is here: every client broadcasts a small ephemeral "presence" message when it connects and
// every 10 s; a peer counts as connected while we heard from it in the last 30 s.

export const PRESENCE_INTERVAL_MS = 10_000;
export const PRESENCE_WINDOW_MS = 30_000;

export interface PresenceMessage {
  type: "presence";
  /** The sender's device id (stable per browser), so a reload does not count twice. */
  peer: string;
  name: string;
  role: string;
  at: number;
  /** Set when the sender just connected: others answer with their own presence. */
  hello?: boolean;
  /** Set when the sender is leaving (page closed): stop counting it now. */
  leaving?: boolean;
}

export function isPresenceMessage(m: unknown): m is PresenceMessage {
  if (!m || typeof m !== "object") return false;
  const p = m as Record<string, unknown>;
  return p.type === "presence" && typeof p.peer === "string" && p.peer !== "" && p.peer.length <= 100;
}

export interface PresentPeer {
  peer: string;
  name: string;
  role: string;
  /** When we last heard from it, by our own clock (theirs may be off). */
  heardAt: number;
}

export class PresenceTracker {
  readonly #peers = new Map<string, PresentPeer>();

  constructor(private readonly self: string) {}

  /** Records a message; returns true if the sender is new (or had gone quiet) and said hello. */
  record(message: unknown, now: number): { isNew: boolean; wantsReply: boolean } {
    if (!isPresenceMessage(message) || message.peer === this.self) return { isNew: false, wantsReply: false };
    const before = this.#peers.get(message.peer);
    const isNew = !before || now - before.heardAt > PRESENCE_WINDOW_MS;
    if (message.leaving) {
      this.#peers.delete(message.peer);
      return { isNew: false, wantsReply: false };
    }
    this.#peers.set(message.peer, {
      peer: message.peer,
      name: typeof message.name === "string" ? message.name.slice(0, 60) : "",
      role: typeof message.role === "string" ? message.role.slice(0, 20) : "",
      heardAt: now,
    });
    return { isNew, wantsReply: isNew || message.hello === true };
  }

  /** Peers heard from in the last 30 s, not counting this device. */
  present(now: number): PresentPeer[] {
    const out: PresentPeer[] = [];
    for (const [id, p] of this.#peers) {
      if (now - p.heardAt <= PRESENCE_WINDOW_MS) out.push(p);
      else this.#peers.delete(id);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  count(now: number): number {
    return this.present(now).length;
  }
}
