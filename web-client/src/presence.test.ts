import { describe, expect, it } from "vitest";
import { isPresenceMessage, PRESENCE_WINDOW_MS, PresenceTracker } from "./presence";

const msg = (peer: string, extra: object = {}) => ({ type: "presence", peer, name: peer.toUpperCase(), role: "observer", at: 0, ...extra });

describe("presence", () => {
  it("counts distinct peers heard from in the last 30 s, not itself", () => {
    const t = new PresenceTracker("me");
    t.record(msg("a"), 1000);
    t.record(msg("b"), 2000);
    t.record(msg("a"), 3000);
    t.record(msg("me"), 3000);
    expect(t.count(3000)).toBe(2);
    expect(t.count(2000 + PRESENCE_WINDOW_MS)).toBe(2);
    expect(t.count(2001 + PRESENCE_WINDOW_MS)).toBe(1); // b aged out, a heard at 3000
    expect(t.count(3001 + PRESENCE_WINDOW_MS)).toBe(0);
  });

  it("asks for a reply from newcomers and hellos only", () => {
    const t = new PresenceTracker("me");
    expect(t.record(msg("a"), 0).wantsReply).toBe(true);
    expect(t.record(msg("a"), 10_000).wantsReply).toBe(false);
    expect(t.record(msg("a", { hello: true }), 11_000).wantsReply).toBe(true);
    expect(t.record(msg("a"), 11_000 + PRESENCE_WINDOW_MS + 1).isNew).toBe(true);
  });

  it("forgets a peer that leaves", () => {
    const t = new PresenceTracker("me");
    t.record(msg("a"), 0);
    t.record(msg("a", { leaving: true }), 1);
    expect(t.count(2)).toBe(0);
  });

  it("ignores other ephemeral messages", () => {
    const t = new PresenceTracker("me");
    for (const m of [null, "x", { type: "cursor", peer: "a" }, { type: "presence" }, { type: "presence", peer: "" }]) {
      expect(isPresenceMessage(m)).toBe(false);
      t.record(m, 0);
    }
    expect(t.count(0)).toBe(0);
  });
});
