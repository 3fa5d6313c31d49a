import { describe, expect, it } from "vitest";
import { Store, type AccessResponse, type KV } from "./store";

function memory(): KV & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

const access = (over: Partial<AccessResponse> = {}): AccessResponse => ({
  token: "tok",
  docUrl: "automerge:abc",
  labId: "lab1",
  title: "Making ten",
  role: "observer",
  name: "Ana",
  expiresAt: 1,
  ...over,
});

describe("store", () => {
  it("forgets a deleted lab and nothing else", () => {
    const s = new Store(memory());
    s.saveAccess(access({ labId: "a" }));
    s.saveAccess(access({ labId: "b" }));
    s.forgetLab("a");
    s.forgetLab("missing");
    expect(s.recentLabs().map((l) => l.labId)).toEqual(["b"]);
  });

  it("keeps a stable device id", () => {
    const kv = memory();
    const id = new Store(kv).deviceId();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Store(kv).deviceId()).toBe(id);
  });

  it("keeps a secret device key apart from the device id, and the author id each lab grants", () => {
    const kv = memory();
    const s = new Store(kv);
    const key = s.deviceKey();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(new Store(kv).deviceKey()).toBe(key);
    expect(key).not.toContain(s.deviceId().replace(/-/g, ""));
    s.saveAccess(access({ authorId: "a0123" }));
    expect(s.lab("lab1")?.authorId).toBe("a0123");
    // Joining again as an observer keeps a facilitator's access and its author id.
    s.saveAccess(access({ role: "facilitator", token: "fac", authorId: "a-fac" }));
    s.saveAccess(access({ authorId: "a-obs" }));
    expect(s.lab("lab1")).toMatchObject({ role: "facilitator", authorId: "a-fac" });
  });

  it("remembers lab access and drops only the token when refused", () => {
    const s = new Store(memory());
    s.saveAccess(access(), { joinCode: "WM6C9X" }, 10);
    expect(s.lab("lab1")).toMatchObject({ token: "tok", joinCode: "WM6C9X", name: "Ana" });
    s.dropToken("lab1");
    expect(s.lab("lab1")?.token).toBeUndefined();
    expect(s.lab("lab1")?.joinCode).toBe("WM6C9X");
    expect(s.lab("lab1")?.docUrl).toBe("automerge:abc");
  });

  it("does not downgrade a facilitator who also joins as observer", () => {
    const s = new Store(memory());
    s.saveAccess(access({ role: "facilitator", token: "fac" }), { facilitatorKey: "K" }, 1);
    s.saveAccess(access({ role: "observer", token: "obs", name: "Ana R" }), {}, 2);
    expect(s.lab("lab1")).toMatchObject({ role: "facilitator", token: "fac", facilitatorKey: "K", name: "Ana R" });
  });

  it("lists recent labs first and survives broken JSON", () => {
    const kv = memory();
    const s = new Store(kv);
    s.saveAccess(access({ labId: "a" }), {}, 1);
    s.saveAccess(access({ labId: "b" }), {}, 2);
    expect(s.recentLabs().map((l) => l.labId)).toEqual(["b", "a"]);
    kv.data.set("lb.labs", "{oops");
    expect(s.recentLabs()).toEqual([]);
  });

  it("keeps server heads, theme and a one-time flash", () => {
    const s = new Store(memory(), memory());
    s.setServerHeads("doc", "sid", ["aa"]);
    expect(s.serverHeads("doc")).toEqual({ storageId: "sid", heads: ["aa"] });
    expect(s.theme()).toBeUndefined();
    s.setTheme("dark");
    expect(s.theme()).toBe("dark");
    s.setFlash("expired");
    expect(s.takeFlash()).toBe("expired");
    expect(s.takeFlash()).toBeUndefined();
  });

  it("works when storage throws", () => {
    const broken: KV = {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("quota");
      },
      removeItem: () => {
        throw new Error("denied");
      },
    };
    const s = new Store(broken, broken);
    s.setLastName("Ana");
    expect(s.lastName()).toBe("Ana");
  });
});
