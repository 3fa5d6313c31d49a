// Photos from the phone: taken offline, kept through reloads, uploaded exactly once when the
// network is back, and the note is "sent" only once the server has both the note and its photo.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import {
  ORGANIZER_TOKEN,
  TEST_TIMEOUT,
  audit,
  boardNote,
  checkBrowserLog,
  feedNote,
  poll,
  postNote,
  sel,
  waitAttr,
  waitCount,
  waitReady,
  waitStatus,
} from "./harness.mjs";
import { cameraPhoto, jpegMarkers, jpegSize } from "./photos.mjs";
import { joinPhone, projectLab, screenshotDir } from "./scenario.mjs";

const PHOTO_URL = /\/api\/labs\/[^/]+\/photos\/[0-9a-f]{64}$/;

test("a photo taken offline survives reloads, goes up once, and the note is sent only with it", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten, photos" });
  const shots = screenshotDir(t);
  const phone = await joinPhone(browser, origin, lab.joinCode, "Dana", { label: "phone" });
  const ctx = phone.context();

  // Every photo request of the phone, and the PUTs held at a gate while the test looks.
  const puts = [];
  const answers = [];
  let openGate;
  const gate = new Promise((resolve) => (openGate = resolve));
  await ctx.route(PHOTO_URL, async (route) => {
    if (route.request().method() !== "PUT") return route.continue();
    puts.push(route.request().url());
    await gate;
    return route.continue();
  });
  ctx.on("response", (r) => {
    if (r.request().method() === "PUT" && PHOTO_URL.test(r.url())) answers.push(r.status());
  });

  // One note while online, so the phone holds the board before the network drops.
  const before = "Before the photos: K. counted on from 10";
  await postNote(phone, "strategies", before);
  await waitStatus(feedNote(phone, before), "synced");
  await phone.waitForFunction(() => navigator.serviceWorker?.controller != null);

  // The camera button and the reminder are there, by the note box.
  await waitCount(phone.locator(sel("photo-reminder")), 1, "the reminder");
  assert.match(await phone.locator(sel("photo-reminder")).innerText(), /student work.*not faces/i);
  assert.equal(await phone.locator(sel("photo-camera")).getAttribute("capture"), "environment", "the camera input opens the back camera");
  assert.equal(await phone.locator(sel("photo-camera")).getAttribute("accept"), "image/*");

  const kept = await cameraPhoto(phone, "L. — 8 + 5");
  const dropped = await cameraPhoto(phone, "a face by mistake");

  await ctx.setOffline(true);
  await waitAttr(phone, "connection", "data-state", "offline");

  // Two photos from the library; the second is taken off again.
  await phone.locator(sel("photo-library")).setInputFiles([
    { name: "IMG_0001.JPG", mimeType: "image/jpeg", buffer: kept },
    { name: "IMG_0002.JPG", mimeType: "image/jpeg", buffer: dropped },
  ]);
  const slots = phone.locator(`${sel("photo-slot")}[data-photo-id]`);
  await waitCount(slots, 2, "two photos attached");
  const keptId = await slots.nth(0).getAttribute("data-photo-id");
  const droppedId = await slots.nth(1).getAttribute("data-photo-id");
  assert.match(keptId, /^[0-9a-f]{64}$/);
  assert.notEqual(keptId, droppedId);
  assert.match(await phone.locator(sel("photo-count")).innerText(), /2 of 4 photos/);
  await audit(phone, "the phone with two photos attached");
  await phone.screenshot({ path: `${shots}/phone-photo-attached.png` });
  await slots.nth(1).locator(sel("photo-remove")).tap();
  await waitCount(slots, 1, "one photo left after taking one off");

  // A reload while offline: the photo is still on the note being written.
  await phone.reload();
  await waitReady(phone);
  await waitAttr(phone, "connection", "data-state", "offline");
  await waitCount(phone.locator(`${sel("photo-slot")}[data-photo-id="${keptId}"]`), 1, "the draft photo after an offline reload");
  await waitCount(phone.locator(`${sel("photo-slot")}[data-photo-id]`), 1, "only the kept photo after the reload");

  const text = "Photo of L.'s recording sheet: filled the first ten-frame, then counted on 3";
  await postNote(phone, "student-thinking", text);
  const card = feedNote(phone, text);
  await waitStatus(card, "waiting");
  await waitCount(phone.locator(`${sel("photo-slot")}[data-photo-id]`), 0, "the note box is empty after Send");
  const cardPhoto = card.locator(`${sel("note-photo")}[data-photo-id="${keptId}"]`);
  await waitCount(cardPhoto, 1, "the photo on the phone's card");
  assert.equal(await cardPhoto.getAttribute("data-state"), "pending");
  assert.ok(await cardPhoto.locator("img").evaluate((img) => img.complete && img.naturalWidth > 0), "the card shows the phone's copy of the photo");

  // Another reload while offline: the note and its photo still wait on the phone.
  await phone.reload();
  await waitReady(phone);
  await waitStatus(feedNote(phone, text), "waiting");
  await waitCount(feedNote(phone, text).locator(`${sel("note-photo")}[data-photo-id="${keptId}"] img`), 1, "the photo after the second reload");
  assert.equal(puts.length, 0, "nothing was uploaded while offline");

  // Online: the note reaches the server and the board, the upload is held at the gate; the
  // phone still says the note waits.
  await ctx.setOffline(false);
  await waitAttr(phone, "connection", "data-state", "online");
  await waitCount(boardNote(board, "student-thinking", text), 1, "the note on the board");
  // The board has the note and waits for its photo.
  const boardPhoto = boardNote(board, "student-thinking", text).locator(`${sel("note-photo")}[data-photo-id="${keptId}"]`);
  await waitCount(boardPhoto, 1, "the photo's place on the board's card");
  await poll("the upload to start", () => puts.length, (n) => n === 1);
  await waitStatus(feedNote(phone, text), "waiting");
  assert.ok((await phone.locator(sel("pending-count")).innerText()).includes("1"), "the phone counts the note as waiting");
  await feedNote(phone, text).scrollIntoViewIfNeeded();
  await phone.screenshot({ path: `${shots}/phone-photo-waiting.png` });

  openGate();
  await waitStatus(feedNote(phone, text), "synced");
  await poll("the upload's answer", () => answers.length, (n) => n === 1);
  assert.deepEqual(answers, [201], "the photo was stored by one upload");
  assert.ok(puts[0].endsWith(`/photos/${keptId}`), "the kept photo was the one uploaded");
  // The board shows the photo itself, without a reload.
  await poll("the photo on the board", () => boardPhoto.locator("img").evaluate((img) => img.complete && img.naturalWidth).catch(() => 0), (w) => w > 0);

  // What the server keeps: the phone's re-encoding, at most 1600 px, no EXIF or GPS, named by its hash.
  const res = await fetch(`${origin}/api/labs/${lab.labId}/photos/${keptId}`, { headers: { Authorization: `Bearer ${ORGANIZER_TOKEN}` } });
  assert.equal(res.status, 200);
  const stored = Buffer.from(await res.arrayBuffer());
  assert.equal(createHash("sha256").update(stored).digest("hex"), keptId, "the id is the SHA-256 of the stored bytes");
  assert.deepEqual(jpegSize(stored), { width: 1600, height: 1200 }, "scaled to 1600 px on the long side");
  assert.ok(!jpegMarkers(stored).includes(0xe1), "no EXIF segment");
  assert.equal(stored.indexOf("GPS"), -1, "no GPS text");
  assert.equal(stored.indexOf("PhoneCam"), -1, "no camera name");
  const gone = await fetch(`${origin}/api/labs/${lab.labId}/photos/${droppedId}`, { headers: { Authorization: `Bearer ${ORGANIZER_TOKEN}` } });
  assert.equal(gone.status, 404, "the photo taken off the note never left the phone");

  // Later reloads upload nothing again.
  await phone.reload();
  await waitReady(phone);
  await waitStatus(feedNote(phone, text), "synced");
  const barrier = "After the photo: one more note";
  await postNote(phone, "wonderings", barrier);
  await waitStatus(feedNote(phone, barrier), "synced");
  assert.equal(puts.length, 1, "one upload in all");
  await feedNote(phone, text).scrollIntoViewIfNeeded();
  await phone.screenshot({ path: `${shots}/phone-photo-sent.png` });
  await audit(phone, "the phone's feed with a sent photo");

  checkBrowserLog(t, browser);
});
