import { describe, expect, it } from "vitest";
import { PHOTO_EXPIRED, photoLoader, type PhotoLoad, type PhotoLoaderOptions } from "./photos";

const A = "a".repeat(64);
const B = "b".repeat(64);
const ids = Array.from({ length: 7 }, (_, i) => String(i).repeat(64));

/** A request the fake server holds until the test answers it. */
interface Pending {
  url: string;
  auth: string | null;
  answer(status: number, body?: string): Promise<void>;
  fail(): Promise<void>;
}

/** Lets every promise callback that is ready run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

function harness(extra: Partial<PhotoLoaderOptions> = {}) {
  const requests: Pending[] = [];
  const created: string[] = [];
  const revoked: string[] = [];
  const timers: { ms: number; fn: () => void; cancelled: boolean }[] = [];
  let token = "t1";
  const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const headers = new Headers(init?.headers);
      requests.push({
        url: String(input),
        auth: headers.get("Authorization"),
        async answer(status, body = "jpeg") {
          resolve(new Response(status === 304 || status === 204 ? null : body, { status }));
          await settle();
        },
        async fail() {
          reject(new TypeError("Failed to fetch"));
          await settle();
        },
      });
    })) as typeof fetch;
  const loader = photoLoader({
    labId: "lab 1",
    token: () => token,
    renew: async () => undefined,
    fetch: fetchFn,
    createObjectURL: (b) => {
      const url = `blob:photo-${created.length}-${b.size}`;
      created.push(url);
      return url;
    },
    revokeObjectURL: (u) => revoked.push(u),
    schedule: (fn, ms) => {
      const t = { ms, fn, cancelled: false };
      timers.push(t);
      return () => {
        t.cancelled = true;
      };
    },
    retryDelay: (attempt) => 1000 * (attempt + 1),
    ...extra,
  });
  const fire = async () => {
    const due = timers.splice(0).filter((t) => !t.cancelled);
    for (const t of due) t.fn();
    await settle();
  };
  return {
    loader,
    requests,
    created,
    revoked,
    timers,
    fire,
    setToken: (t: string) => {
      token = t;
    },
  };
}

const record = () => {
  const seen: PhotoLoad[] = [];
  return { seen, listener: (l: PhotoLoad) => seen.push(l), last: () => seen[seen.length - 1] };
};

describe("photoLoader", () => {
  it("asks the server once for a photo many cards show, with the token in a header, and gives all of them one URL", async () => {
    const h = harness();
    const cards = [record(), record(), record()];
    for (const c of cards) h.loader.watch(A, c.listener);
    expect(h.requests).toHaveLength(1);
    expect(h.requests[0]!.url).toBe(`/api/labs/lab%201/photos/${A}`);
    expect(h.requests[0]!.url).not.toContain("t1");
    expect(h.requests[0]!.auth).toBe("Bearer t1");
    for (const c of cards) expect(c.last()).toEqual({ state: "loading" });
    await h.requests[0]!.answer(200);
    for (const c of cards) expect(c.last()).toEqual({ state: "ready", url: "blob:photo-0-4" });
    // A card that comes later gets the same URL, with no new request.
    const late = record();
    h.loader.watch(A, late.listener);
    expect(late.seen).toEqual([{ state: "ready", url: "blob:photo-0-4" }]);
    expect(h.requests).toHaveLength(1);
    expect(h.created).toHaveLength(1);
  });

  it("shows a photo not uploaded yet as waiting, asks again with backoff, and shows it once it is there", async () => {
    const h = harness();
    const c = record();
    h.loader.watch(A, c.listener);
    await h.requests[0]!.answer(404);
    expect(c.last()).toEqual({ state: "waiting" });
    expect(h.timers.map((t) => t.ms)).toEqual([1000]);
    await h.fire();
    expect(h.requests).toHaveLength(2);
    await h.requests[1]!.answer(404);
    expect(c.last()).toEqual({ state: "waiting" });
    expect(h.timers.map((t) => t.ms)).toEqual([2000]);
    await h.fire();
    await h.requests[2]!.answer(200);
    expect(c.seen.map((l) => l.state)).toEqual(["loading", "waiting", "ready"]);
    expect(h.timers).toHaveLength(0);
  });

  it("asks again after a network failure or a server error, keeping what it shows", async () => {
    const h = harness();
    const c = record();
    h.loader.watch(A, c.listener);
    await h.requests[0]!.fail();
    expect(c.last()).toEqual({ state: "loading" });
    await h.fire();
    await h.requests[1]!.answer(503);
    expect(c.last()).toEqual({ state: "loading" });
    await h.fire();
    await h.requests[2]!.answer(200);
    expect(c.last()?.state).toBe("ready");
  });

  it("never has more than the cap of requests open at once, and serves the rest in turn", async () => {
    const h = harness({ maxConcurrent: 4 });
    const cards = ids.map(() => record());
    ids.forEach((id, i) => h.loader.watch(id, cards[i]!.listener));
    expect(h.requests).toHaveLength(4);
    await h.requests[0]!.answer(200);
    expect(h.requests).toHaveLength(5);
    await h.requests[1]!.answer(404);
    expect(h.requests).toHaveLength(6);
    await h.requests[2]!.fail();
    expect(h.requests).toHaveLength(7);
    for (const r of h.requests.slice(3)) await r.answer(200);
    expect(h.requests).toHaveLength(7);
    expect(h.requests.map((r) => r.url.slice(-64))).toEqual(ids);
    expect(cards.map((c) => c.last()?.state)).toEqual(["ready", "waiting", "loading", "ready", "ready", "ready", "ready"]);
  });

  it("revokes a photo's URL when its last card stops showing it, and every URL on destroy", async () => {
    const h = harness();
    const one = record();
    const two = record();
    const stopOne = h.loader.watch(A, one.listener);
    const stopTwo = h.loader.watch(A, two.listener);
    h.loader.watch(B, record().listener);
    await h.requests[0]!.answer(200);
    await h.requests[1]!.answer(200);
    stopOne();
    stopOne();
    expect(h.revoked).toEqual([]);
    stopTwo();
    expect(h.revoked).toEqual([h.created[0]]);
    // Shown again later: asked again, a new URL.
    h.loader.watch(A, record().listener);
    expect(h.requests).toHaveLength(3);
    await h.requests[2]!.answer(200);
    h.loader.destroy();
    expect(h.revoked.sort()).toEqual([...h.created].sort());
  });

  it("cancels the retry of a photo nobody shows any more", async () => {
    const h = harness();
    const stop = h.loader.watch(A, record().listener);
    await h.requests[0]!.answer(404);
    expect(h.timers).toHaveLength(1);
    stop();
    expect(h.timers[0]!.cancelled).toBe(true);
    await h.fire();
    expect(h.requests).toHaveLength(1);
  });

  it("renews an expired token once and asks again with the new one", async () => {
    let renewals = 0;
    const h = harness({
      renew: async () => {
        renewals += 1;
        return "t2";
      },
    });
    const c = record();
    h.loader.watch(A, c.listener);
    await h.requests[0]!.answer(401);
    expect(renewals).toBe(1);
    expect(h.requests[1]!.auth).toBe("Bearer t2");
    await h.requests[1]!.answer(200);
    expect(c.last()?.state).toBe("ready");
  });

  it("says the sign-in expired when the token cannot be renewed, and asks no more", async () => {
    const h = harness();
    const c = record();
    h.loader.watch(A, c.listener);
    await h.requests[0]!.answer(401);
    expect(c.last()).toEqual({ state: "failed", reason: PHOTO_EXPIRED });
    expect(h.requests).toHaveLength(1);
    expect(h.timers).toHaveLength(0);
  });

  it("fails with the status for a refusal that asking again cannot change", async () => {
    const h = harness();
    const c = record();
    h.loader.watch(A, c.listener);
    await h.requests[0]!.answer(403);
    expect(c.last()).toEqual({ state: "failed", reason: "This photo could not be loaded (the server answered 403)." });
    expect(h.timers).toHaveLength(0);
  });

  it("drops an answer that arrives after its card stopped showing the photo (no URL to leak)", async () => {
    const h = harness();
    const stop = h.loader.watch(A, record().listener);
    stop();
    await h.requests[0]!.answer(200);
    expect(h.created).toEqual([]);
  });
});
