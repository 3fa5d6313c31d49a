import { IDBFactory } from "fake-indexeddb";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Note } from "../board";
import type { PreparedPhoto } from "../photo";
import { PhotoQueue, type UploadResult } from "../photoqueue";
import { notesWaitingOnPhotos, PhonePhotos } from "./photos";
import { filesThatFit, photoCountText } from "./phototray";

const ID = (c: string) => c.repeat(64);

function note(id: string, authorId: string, photos: string[]): Note {
  return { id, authorId, authorName: authorId, text: id, category: "c", createdAt: 1, children: [], reactions: {}, photos: photos.map((p) => ({ id: p })) } as unknown as Note;
}

let n = 0;
let online = true;
function setup(answer: (id: string) => UploadResult = () => ({ state: "stored" })) {
  const queue = new PhotoQueue({ indexedDB: new IDBFactory(), name: `phone-photos-${++n}`, locks: null });
  const uploads: string[] = [];
  let changes = 0;
  let unauthorized = 0;
  const make = () =>
    new PhonePhotos({
      labId: "lab1",
      token: () => "tok",
      onChange: () => void changes++,
      onUnauthorized: () => void unauthorized++,
      queue,
      random: () => 0,
      online: () => online,
      upload: async (_lab, _token, id) => {
        uploads.push(id);
        return answer(id);
      },
      prepare: async (file: Blob): Promise<PreparedPhoto> => {
        const text = await file.text();
        const blob = new Blob([text], { type: "image/jpeg" });
        return { id: ID(text[0]!), blob, type: "image/jpeg", width: 10, height: 10, bytes: blob.size };
      },
    });
  return { queue, uploads, make, changes: () => changes, unauthorized: () => unauthorized };
}

/** Waits until the queue's drain settles (it runs in the background). */
async function settle(queue: PhotoQueue): Promise<void> {
  await vi.waitFor(async () => expect((await queue.pending("lab1")).length).toBe(0));
}

afterEach(() => {
  online = true;
});

describe("which of my notes wait for a photo", () => {
  it("waits on a draft or pending photo of my own notes only", () => {
    const states: Record<string, string> = { [ID("a")]: "pending", [ID("b")]: "stored", [ID("c")]: "refused", [ID("d")]: "draft" };
    const notes = [note("n1", "me", [ID("a")]), note("n2", "me", [ID("b")]), note("n3", "me", [ID("c")]), note("n4", "you", [ID("a")]), note("n5", "me", [ID("b"), ID("d")]), note("n6", "me", [])];
    expect([...notesWaitingOnPhotos(notes, "me", (id) => states[id] as never)].sort()).toEqual(["n1", "n5"]);
  });
});

describe("the composer's photo limits", () => {
  it("takes as many files as fit and counts the rest", () => {
    expect(filesThatFit([1, 2, 3], 0)).toEqual({ take: [1, 2, 3], left: 0 });
    expect(filesThatFit([1, 2, 3], 2)).toEqual({ take: [1, 2], left: 1 });
    expect(filesThatFit([1], 4)).toEqual({ take: [], left: 1 });
    expect(photoCountText(0)).toBe("");
    expect(photoCountText(1)).toBe("1 of 4 photos");
    expect(photoCountText(4)).toBe("4 photos: the most a note holds.");
  });
});

describe("PhonePhotos", () => {
  it("keeps a photo as a draft, never uploads it until released, then once", async () => {
    const s = setup();
    const photos = s.make();
    const id = await photos.attach(new Blob(["a"]));
    expect(id).toBe(ID("a"));
    expect(photos.get(id)).toEqual({ state: "draft" });
    expect(photos.url(id)).toMatch(/^blob:/);
    photos.drain();
    await new Promise((r) => setTimeout(r, 20));
    expect(s.uploads).toEqual([]);
    expect(photos.waitingNotes([note("n", "me", [id])], "me")).toEqual(new Set(["n"]));
    await photos.release([id]);
    await settle(s.queue);
    await vi.waitFor(() => expect(photos.get(id)).toEqual({ state: "stored" }));
    expect(s.uploads).toEqual([id]);
    expect(photos.waitingNotes([note("n", "me", [id])], "me")).toEqual(new Set());
    photos.destroy();
  });

  it("after a reload gives drafts back to the composer and releases those a saved note refers to", async () => {
    const s = setup();
    const before = s.make();
    const onNote = await before.attach(new Blob(["a"]));
    const draft = await before.attach(new Blob(["b"]));
    before.destroy();
    const after = s.make();
    expect(await after.load([note("n", "me", [onNote])])).toEqual([draft]);
    expect(after.get(onNote)).toEqual({ state: "pending" });
    expect(after.get(draft)).toEqual({ state: "draft" });
    after.drain();
    await settle(s.queue);
    expect(s.uploads).toEqual([onNote]);
    after.destroy();
  });

  it("a photo taken off the note leaves the phone and is never uploaded", async () => {
    const s = setup();
    const photos = s.make();
    const id = await photos.attach(new Blob(["c"]));
    await photos.discard(id);
    expect(photos.get(id)).toBeUndefined();
    expect(photos.url(id)).toBeUndefined();
    expect(await s.queue.get("lab1", id)).toBeUndefined();
    photos.destroy();
  });

  it("retries after a failure with backoff, and asks to check the token on a 401", async () => {
    let answer: UploadResult = { state: "retry", reason: "Unauthorized", status: 401 };
    const s = setup(() => answer);
    const photos = s.make();
    const id = await photos.attach(new Blob(["d"]));
    await photos.release([id]);
    await vi.waitFor(() => expect(s.unauthorized()).toBe(1));
    expect(photos.get(id)?.state).toBe("pending");
    answer = { state: "stored" };
    // The first retry comes after the backoff's first delay (at most a second here).
    await vi.waitFor(() => expect(photos.get(id)?.state).toBe("stored"), { timeout: 3_000 });
    expect(s.uploads).toEqual([id, id]);
    photos.destroy();
  });

  it("does not try while the browser is offline", async () => {
    const s = setup();
    const photos = s.make();
    const id = await photos.attach(new Blob(["f"]));
    online = false;
    await photos.release([id]);
    await new Promise((r) => setTimeout(r, 20));
    expect(s.uploads).toEqual([]);
    online = true;
    photos.drain();
    await vi.waitFor(() => expect(photos.get(id)?.state).toBe("stored"));
    expect(s.uploads).toEqual([id]);
    photos.destroy();
  });

  it("shows a refusal's reason and does not retry it", async () => {
    const s = setup(() => ({ state: "refused", status: 507, reason: "The lab's photo space on the server is full." }));
    const photos = s.make();
    const id = await photos.attach(new Blob(["e"]));
    await photos.release([id]);
    await vi.waitFor(() => expect(photos.get(id)).toEqual({ state: "refused", reason: "The lab's photo space on the server is full." }));
    expect(photos.waitingNotes([note("n", "me", [id])], "me")).toEqual(new Set());
    expect(s.uploads).toEqual([id]);
    photos.destroy();
  });
});
