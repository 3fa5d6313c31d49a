import { describe, expect, it } from "vitest";
import { connectionState, connectionText, statusText } from "./phone/topbar";

describe("the phone's top bar", () => {
  it("says the lab has ended rather than offline or online", () => {
    expect(connectionState({ online: false, ended: true })).toBe("ended");
    expect(connectionText({ online: true, browserOnline: true, ended: true })).toBe("Lab ended");
    expect(connectionState({ online: true })).toBe("online");
    expect(connectionText({ online: false, browserOnline: true })).toBe("Offline · reconnecting");
    expect(connectionText({ online: false, browserOnline: false, ended: false })).toBe("Offline");
  });

  it("says what happened to my notes under Send", () => {
    expect(statusText(2, false, false)).toMatch(/^Offline: 2 notes are saved/);
    expect(statusText(1, true, false)).toBe("Sending…");
    expect(statusText(0, true, true)).toBe("Sent ✓");
  });
});
