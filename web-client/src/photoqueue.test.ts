import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";

import { UNREACHABLE } from "./api";
import type { PreparedPhoto } from "./photo";
import { PhotoQueue, photoPath, uploadPhoto, uploadResultFor, type Upload, type UploadResult } from "./photoqueue";

let n = 0;
/** A fresh database (the drain guard is per database name and lab). */
function setup() {
  const factory = new IDBFactory();
  const name = `photos-test-${++n}`;
  let clock = 1_000;
  const open = () => new PhotoQueue({ indexedDB: factory, name, now: () => ++clock, locks: null });
  return { open };
}

function prepared(content: string, id = content.padEnd(64, "0")): PreparedPhoto {
  const blob = new Blob([content], { type: "image/jpeg" });
  return { id, blob, type: "image/jpeg", width: 1600, height: 1200, bytes: blob.size };
}

/** An upload whose answers are scripted, recording what reached it. */
function fakeUpload(answer: (call: number, id: string) => UploadResult | Promise<UploadResult>) {
  const calls: { labId: string; token: string; id: string; body: string }[] = [];
  const upload: Upload = async (labId, token, id, blob) => {
    calls.push({ labId, token, id, body: await blob.text() });
    return answer(calls.length, id);
  };
  const stored = () => calls.map((c) => c.id);
  return { upload, calls, stored };
}

const offline: UploadResult = { state: "retry", reason: UNREACHABLE, status: 0 };

describe("PhotoQueue", () => {
  it("keeps a photo with its bytes and details, waiting", async () => {
    const q = setup().open();
    const p = prepared("aaa");
    const added = await q.add("lab1", p);
    expect(added).toMatchObject({ labId: "lab1", id: p.id, state: "pending", size: 3, type: "image/jpeg", width: 1600, height: 1200, attempts: 0 });
    const got = await q.get("lab1", p.id);
    expect(await got?.blob.text()).toBe("aaa");
    expect(got?.blob.type).toBe("image/jpeg");
    expect(await q.get("lab2", p.id)).toBeUndefined();
    expect((await q.pending("lab1")).map((x) => x.id)).toEqual([p.id]);
    expect(await q.pending("lab2")).toEqual([]);
  });

  it("uploads a photo taken offline exactly once when the network comes back", async () => {
    const q = setup().open();
    const p = prepared("bbb");
    await q.add("lab1", p);
    let online = false;
    const f = fakeUpload(() => (online ? { state: "stored" } : offline));

    const first = await q.drain("lab1", "tok", f.upload);
    expect(first.stopped).toEqual({ reason: UNREACHABLE, status: 0 });
    expect(first).toMatchObject({ uploaded: [], pending: 1 });
    expect(await q.get("lab1", p.id)).toMatchObject({ state: "pending", attempts: 1, reason: UNREACHABLE });

    online = true;
    const second = await q.drain("lab1", "tok", f.upload);
    expect(second).toEqual({ uploaded: [p.id], refused: [], pending: 0 });
    expect(await q.drain("lab1", "tok", f.upload)).toEqual({ uploaded: [], refused: [], pending: 0 });
    expect(f.calls.map((c) => [c.labId, c.token, c.id, c.body])).toEqual([
      ["lab1", "tok", p.id, "bbb"],
      ["lab1", "tok", p.id, "bbb"],
    ]);
    // Kept for display, never sent again.
    expect(await q.get("lab1", p.id)).toMatchObject({ state: "stored", storedAt: expect.any(Number) });
    expect(await q.pending("lab1")).toEqual([]);
  });

  it("still has the pending photo after a reload, and sends it once from there", async () => {
    const env = setup();
    const before = env.open();
    const p = prepared("ccc");
    await before.add("lab1", p);
    await before.close();

    const after = env.open();
    expect((await after.pending("lab1")).map((x) => x.id)).toEqual([p.id]);
    expect(await (await after.get("lab1", p.id))?.blob.text()).toBe("ccc");
    const f = fakeUpload(() => ({ state: "stored" }));
    expect((await after.drain("lab1", "tok", f.upload)).uploaded).toEqual([p.id]);
    await after.close();

    const again = env.open();
    expect(await again.pending("lab1")).toEqual([]);
    expect((await again.drain("lab1", "tok", f.upload)).uploaded).toEqual([]);
    expect(f.stored()).toEqual([p.id]);
  });

  it("adding the same photo again keeps it stored", async () => {
    const q = setup().open();
    const p = prepared("ddd");
    await q.add("lab1", p);
    await q.markStored("lab1", p.id);
    expect((await q.add("lab1", p)).state).toBe("stored");
    expect(await q.pending("lab1")).toEqual([]);
  });

  it("uploads each photo once when drains run at the same time", async () => {
    const env = setup();
    const q = env.open();
    const other = env.open(); // a second queue on the same database in this page
    const photos = [prepared("e1"), prepared("e2"), prepared("e3")];
    for (const p of photos) await q.add("lab1", p);
    const f = fakeUpload(async () => {
      await new Promise((r) => setTimeout(r, 5));
      return { state: "stored" };
    });
    const results = await Promise.all([q.drain("lab1", "tok", f.upload), q.drain("lab1", "tok", f.upload), other.drain("lab1", "tok", f.upload)]);
    expect(f.stored()).toEqual(photos.map((p) => p.id));
    for (const r of results) expect(r).toEqual({ uploaded: photos.map((p) => p.id), refused: [], pending: 0 });
  });

  it("takes a Web Lock per lab around a drain, so two tabs do not drain one lab at once", async () => {
    const names: string[] = [];
    const locks = {
      request: ((name: string, cb: () => Promise<unknown>) => {
        names.push(name);
        return cb();
      }) as unknown as LockManager["request"],
    };
    const q = new PhotoQueue({ indexedDB: new IDBFactory(), name: "photos-test-locks", locks });
    await q.add("lab1", prepared("l1"));
    expect((await q.drain("lab1", "tok", fakeUpload(() => ({ state: "stored" })).upload)).pending).toBe(0);
    expect(names).toEqual(["labboard-photos:photos-test-locks\u0000lab1"]);
  });

  it("a photo added while a drain runs goes up in that drain", async () => {
    const q = setup().open();
    const a = prepared("f1");
    const b = prepared("f2");
    await q.add("lab1", a);
    let added: Promise<unknown> | undefined;
    const f = fakeUpload(async (call) => {
      if (call === 1) added = q.add("lab1", b).then(() => q.drain("lab1", "tok", f.upload));
      return { state: "stored" };
    });
    const r = await q.drain("lab1", "tok", f.upload);
    await added;
    expect(f.stored()).toEqual([a.id, b.id]);
    expect(r.uploaded).toEqual([a.id, b.id]);
  });

  it("records a 415 as refused with its reason, does not retry it, and goes on with the next", async () => {
    const q = setup().open();
    const bad = prepared("g1");
    const good = prepared("g2");
    await q.add("lab1", bad);
    await q.add("lab1", good);
    const f = fakeUpload((_, id) => (id === bad.id ? uploadResultFor(415) : { state: "stored" }));
    const r = await q.drain("lab1", "tok", f.upload);
    expect(r.uploaded).toEqual([good.id]);
    expect(r.refused).toEqual([{ id: bad.id, status: 415, reason: expect.stringMatching(/could not read this photo/) }]);
    expect(await q.get("lab1", bad.id)).toMatchObject({ state: "refused", status: 415, reason: expect.stringMatching(/JPEG, PNG or WebP/) });
    await q.drain("lab1", "tok", f.upload);
    expect(f.stored()).toEqual([bad.id, good.id]);
    // The coach may offer it again.
    await q.requeue("lab1", bad.id);
    expect((await q.pending("lab1")).map((x) => x.id)).toEqual([bad.id]);
  });

  it("says when the lab's photo space is full (507)", async () => {
    const q = setup().open();
    const p = prepared("h1");
    await q.add("lab1", p);
    const r = await q.drain("lab1", "tok", fakeUpload(() => uploadResultFor(507)).upload);
    expect(r.stopped).toBeUndefined();
    expect(r.refused[0].reason).toMatch(/lab's photo space on the server is full/);
    expect(await q.get("lab1", p.id)).toMatchObject({ state: "refused", status: 507 });
  });

  it("stops at the first retryable failure and keeps the rest waiting", async () => {
    const q = setup().open();
    for (const p of [prepared("i1"), prepared("i2")]) await q.add("lab1", p);
    const f = fakeUpload(() => uploadResultFor(503, undefined, 7));
    const r = await q.drain("lab1", "tok", f.upload);
    expect(f.calls).toHaveLength(1);
    expect(r).toMatchObject({ uploaded: [], refused: [], pending: 2, stopped: { status: 503, retryAfterSeconds: 7 } });
  });

  it("treats an upload that throws as a failure to retry", async () => {
    const q = setup().open();
    await q.add("lab1", prepared("j1"));
    const r = await q.drain("lab1", "tok", () => Promise.reject(new Error("boom")));
    expect(r).toMatchObject({ pending: 1, stopped: { reason: "boom" } });
  });

  it("keeps labs apart and forgets one lab's photos", async () => {
    const q = setup().open();
    const p = prepared("k1");
    await q.add("lab1", p);
    await q.add("lab2", p);
    const f = fakeUpload(() => ({ state: "stored" }));
    await q.drain("lab1", "tok1", f.upload);
    expect((await q.pending("lab2")).map((x) => x.id)).toEqual([p.id]);
    await q.forgetLab("lab2");
    expect(await q.list("lab2")).toEqual([]);
    expect((await q.list("lab1")).map((x) => x.state)).toEqual(["stored"]);
  });

  it("never uploads a draft; uploads it once released; a discarded draft is gone, a sent photo is not", async () => {
    const { open } = setup();
    const q = open();
    const kept = prepared("draft-kept");
    const dropped = prepared("draft-dropped");
    expect(await q.add("lab1", kept, "draft")).toMatchObject({ state: "draft" });
    await q.add("lab1", dropped, "draft");
    const f = fakeUpload(() => ({ state: "stored" }));
    expect(await q.drain("lab1", "tok", f.upload)).toMatchObject({ uploaded: [], pending: 0 });
    // After a reload the drafts are still there, still drafts.
    const again = open();
    expect((await again.list("lab1")).map((x) => [x.id, x.state])).toEqual([
      [kept.id, "draft"],
      [dropped.id, "draft"],
    ]);
    await again.discardDraft("lab1", dropped.id);
    await again.release("lab1", [kept.id, "f".repeat(64)]);
    expect(await again.get("lab1", dropped.id)).toBeUndefined();
    expect(await again.drain("lab1", "tok", f.upload)).toMatchObject({ uploaded: [kept.id], pending: 0 });
    expect(f.stored()).toEqual([kept.id]);
    // Discarding or releasing a photo that is no draft changes nothing; adding it as a draft again keeps it stored.
    await again.discardDraft("lab1", kept.id);
    await again.release("lab1", [kept.id]);
    expect(await again.add("lab1", kept, "draft")).toMatchObject({ state: "stored" });
    expect(await again.get("lab1", kept.id)).toMatchObject({ state: "stored" });
  });

  it("lists oldest first", async () => {
    const q = setup().open();
    await q.add("lab1", prepared("z"));
    await q.add("lab1", prepared("a"));
    expect((await q.list("lab1")).map((x) => x.id[0])).toEqual(["z", "a"]);
  });
});

describe("uploadResultFor", () => {
  it("maps the server's answers", () => {
    expect(uploadResultFor(201)).toEqual({ state: "stored" });
    expect(uploadResultFor(200)).toEqual({ state: "stored" });
    for (const status of [400, 404, 409, 413, 415, 507]) {
      const r = uploadResultFor(status, "server words");
      expect(r).toMatchObject({ state: "refused", status });
      expect(r.state === "refused" && r.reason).not.toMatch(/server words/);
    }
    expect(uploadResultFor(409)).toMatchObject({ reason: expect.stringMatching(/ended/) });
    expect(uploadResultFor(413)).toMatchObject({ reason: expect.stringMatching(/larger than the server accepts/) });
    for (const status of [0, 401, 408, 429, 500, 502, 503]) expect(uploadResultFor(status)).toMatchObject({ state: "retry", status });
    expect(uploadResultFor(401)).toMatchObject({ reason: expect.stringMatching(/sign-in .* expired/) });
    expect(uploadResultFor(0)).toMatchObject({ reason: UNREACHABLE });
    expect(uploadResultFor(422, "No thanks.")).toEqual({ state: "refused", status: 422, reason: "The server refused this photo: No thanks." });
  });
});

describe("uploadPhoto", () => {
  const id = "a".repeat(64);
  const blob = new Blob(["jpeg bytes"], { type: "image/jpeg" });

  it("PUTs the bytes with the token", async () => {
    let seen: { url: string; init: RequestInit } | undefined;
    const fetch = (async (url: string, init: RequestInit) => {
      seen = { url, init };
      return new Response(JSON.stringify({ id, bytes: 10 }), { status: 201 });
    }) as unknown as typeof globalThis.fetch;
    expect(await uploadPhoto("lab 1", "tok", id, blob, { fetch })).toEqual({ state: "stored" });
    expect(seen?.url).toBe(`/api/labs/lab%201/photos/${id}`);
    expect(photoPath("lab 1", id)).toBe(seen?.url);
    expect(seen?.init.method).toBe("PUT");
    expect(seen?.init.headers).toMatchObject({ Authorization: "Bearer tok", "Content-Type": "image/jpeg" });
    expect(seen?.init.body).toBe(blob);
  });

  it("maps refusals, server errors and no network", async () => {
    const answering = (status: number, body = "", headers: Record<string, string> = {}) =>
      (async () => new Response(body, { status, headers })) as unknown as typeof globalThis.fetch;
    expect(await uploadPhoto("l", "t", id, blob, { fetch: answering(200) })).toEqual({ state: "stored" });
    expect(await uploadPhoto("l", "t", id, blob, { fetch: answering(507, '{"error":"full"}') })).toMatchObject({ state: "refused", status: 507 });
    expect(await uploadPhoto("l", "t", id, blob, { fetch: answering(418, '{"error":"I am a teapot."}') })).toMatchObject({
      state: "refused",
      reason: "The server refused this photo: I am a teapot.",
    });
    expect(await uploadPhoto("l", "t", id, blob, { fetch: answering(503, "", { "Retry-After": "5" }) })).toMatchObject({
      state: "retry",
      status: 503,
      retryAfterSeconds: 5,
    });
    const down = (async () => {
      throw new TypeError("Failed to fetch");
    }) as unknown as typeof globalThis.fetch;
    expect(await uploadPhoto("l", "t", id, blob, { fetch: down })).toEqual({ state: "retry", reason: UNREACHABLE, status: 0 });
  });

  it("gives up on an upload that hangs", async () => {
    const hang = ((_: string, init: RequestInit) =>
      new Promise((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))))) as unknown as typeof globalThis.fetch;
    expect(await uploadPhoto("l", "t", id, blob, { fetch: hang, timeoutMs: 10 })).toMatchObject({ state: "retry", reason: expect.stringMatching(/took too long/) });
  });
});
