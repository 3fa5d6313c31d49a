// Photos of student work on the board (issue #14): a coach's phone attaches photos to a note
// (the library button, then Send); the phone uploads them and the board fetches them with its own
// token and shows them as thumbnails, full size in focus and in presenter mode. A photo not
// uploaded yet (the phone's upload held back) shows "Photo on its way" and turns into the picture
// once it is there, without a reload. The facilitator hides a photo (gone for everyone, undone
// from the toast, shown again with "show hidden"); an observer's tablet gets no hide control.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { PROJECTOR, TABLET, TEST_TIMEOUT, audit, checkBrowserLog, feedNote, joinByCode, open, poll, postNote, sel, waitCount, waitStatus } from "./harness.mjs";
import { cameraPhoto } from "./photos.mjs";
import { boardHasPhases, joinPhone, screenshotDir, text, waitVisible } from "./scenario.mjs";
import { boardAt, openNoteMenu, startPhase, undoToast } from "./board-helpers.mjs";

const NOTE = "Table 3 drew a ten-frame: 8 dots, then 2 more to make ten, 3 left over";
const LATE = "J. wrote 8 + 5 = 13 under the ten-frame and circled the ten";
const PHOTO_URL = /\/api\/labs\/[^/]+\/photos\/[0-9a-f]{64}$/;

/** Attaches photos from the phone's library; the ids of the photos on the note box, once prepared. */
async function attach(phone, files) {
  const slots = phone.locator(`${sel("photo-slot")}[data-photo-id]`);
  const before = await slots.count();
  await phone.locator(sel("photo-library")).setInputFiles(files.map((buffer, i) => ({ name: `IMG_000${i + 1}.JPG`, mimeType: "image/jpeg", buffer })));
  await waitCount(slots, before + files.length, "photos attached");
  return slots.evaluateAll((els) => els.map((el) => el.getAttribute("data-photo-id")));
}

/** The tokens a page keeps for its labs (localStorage). */
const tokensOf = (page) => page.evaluate(() => [...(localStorage.getItem("lb.labs") ?? "").matchAll(/"token":"([^"]+)"/g)].map((m) => m[1]));

const card = (page, noteId) => page.locator(`${sel("board-column")} ${sel("board-note")}[data-note-id="${noteId}"]`);
const thumbs = (page, noteId) => card(page, noteId).locator(sel("note-photo"));

/** Whether every thumbnail of a card shows a decoded picture (naturalWidth > 0). */
async function thumbsDecoded(page, noteId) {
  return card(page, noteId)
    .locator(`${sel("note-photo")} img`)
    .evaluateAll((imgs) => imgs.map((i) => !i.hidden && i.complete && i.naturalWidth > 0 && i.src.startsWith("blob:")));
}

async function waitThumbs(page, noteId, n, what) {
  await poll(`${what}: ${n} thumbnail(s) with the picture`, () => thumbsDecoded(page, noteId), (v) => v.length === n && v.every(Boolean));
}

/** The full-size photo: decoded, whole within the viewport. */
async function focusedPhoto(page) {
  const img = page.locator(sel("focus-photo-img"));
  await poll("the full-size photo decoded", () => img.evaluate((i) => !i.hidden && i.complete && i.naturalWidth > 0), (v) => v === true);
  return img.evaluate((i) => {
    const r = i.getBoundingClientRect();
    return { src: i.src, width: r.width, height: r.height, inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight, ratio: i.naturalWidth / i.naturalHeight };
  });
}

test("photos on the board: thumbnails, on their way, full size, hidden and shown by the facilitator, none of it for an observer", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await boardAt(t, PROJECTOR, { title: "Photos of student work", school: "Hillside", grade: "1" });
  t.after(() => checkBrowserLog(t, browser));
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board))) return;
  await startPhase(board, "lesson-1");
  // Every URL the board asks for: none may carry a token.
  const urls = [];
  board.on("request", (r) => urls.push(r.url()));

  // Ana's phone: a note with two photos, sent and uploaded; then a note whose photo's upload is
  // held back (the phone is still uploading it).
  const phone = await joinPhone(browser, origin, lab.joinCode, "Ana");
  let openGate;
  const gate = new Promise((resolve) => (openGate = resolve));
  let held;
  await phone.context().route(PHOTO_URL, async (route) => {
    if (route.request().method() === "PUT" && held && route.request().url().endsWith(held)) await gate;
    return route.continue();
  });
  const [first, second] = await attach(phone, [await cameraPhoto(phone, "8 + 2 = 10"), await cameraPhoto(phone, "10 + 3 = 13")]);
  const { id: noteId } = await postNote(phone, "student-thinking", NOTE);
  await waitStatus(feedNote(phone, NOTE), "synced");
  [held] = await attach(phone, [await cameraPhoto(phone, "8 + 5 = 13")]);
  const { id: lateId } = await postNote(phone, "student-thinking", LATE);

  // The board: both thumbnails of the first note show the real picture, named for a screen reader.
  await waitThumbs(board, noteId, 2, "Ana's first note");
  assert.deepEqual(
    await thumbs(board, noteId).evaluateAll((bs) => bs.map((b) => b.getAttribute("aria-label"))),
    ["Photo 1 of 2 on Ana’s note — open", "Photo 2 of 2 on Ana’s note — open"],
  );
  const box = await thumbs(board, noteId).first().boundingBox();
  assert.ok(box.width >= 80 && box.width <= 140 && Math.abs(box.width - box.height) < 2, `a square thumbnail about 96 px (${box.width}x${box.height})`);

  // The photo not uploaded yet: "Photo on its way", then the picture, with no reload.
  const waiting = thumbs(board, lateId).locator(sel("note-photo-state"));
  await poll("the late photo on its way", () => text(waiting), (v) => v === "Photo on its way");
  const before = await card(board, lateId).elementHandle();
  await board.screenshot({ path: path.join(shots, "board-photos.png") });
  openGate();
  await waitThumbs(board, lateId, 1, "the late photo, once uploaded");
  assert.equal(await card(board, lateId).evaluate((el, b) => el === b, before), true, "the card is the same element (kept, not rebuilt)");
  const tokens = await tokensOf(board);
  assert.ok(tokens.length > 0, "the board holds its token");
  assert.deepEqual(urls.filter((u) => /token=/.test(u) || tokens.some((tk) => u.includes(tk))), [], "no token in a URL");
  // The picture stays the same element and URL when the board renders again (a new note arrives).
  const src = await thumbs(board, noteId).first().locator("img").getAttribute("src");
  const img = await thumbs(board, noteId).first().locator("img").elementHandle();
  await postNote(phone, "student-thinking", "R. counted on from 8 on her fingers");
  await poll("the third note on the board", () => board.locator(sel("board-note")).count(), (c) => c === 3);
  assert.equal(await thumbs(board, noteId).first().locator("img").getAttribute("src"), src, "the thumbnail keeps its picture");
  assert.equal(await thumbs(board, noteId).first().locator("img").evaluate((el, i) => el === i, img), true, "the thumbnail's image is kept");
  await audit(board, "board with photos (1920x1080)");

  // Full size: the whole photo within the screen, Next and the arrow keys step through the note's photos.
  const opener = thumbs(board, noteId).first();
  await opener.click();
  const overlay = board.locator(sel("focus-overlay"));
  await waitVisible(overlay, true, "the full-size view");
  const one = await focusedPhoto(board);
  assert.ok(one.inside, "the photo fits the screen");
  assert.ok(one.width > 600 || one.height > 600, `the photo is shown large (${one.width}x${one.height})`);
  assert.ok(Math.abs(one.width / one.height - one.ratio) < 0.02, "the photo keeps its proportions");
  assert.match(await text(board.locator(sel("focus-photo-caption"))), /^Photo 1 of 2 on Ana’s note · Lesson 1/);
  assert.equal(await text(board.locator(sel("focus-photo-note"))), NOTE, "the note the photo belongs to is under it");
  await board.locator(sel("focus-photo-next")).click();
  await poll("photo 2 shown", () => text(board.locator(sel("focus-photo-caption"))), (v) => v.startsWith("Photo 2 of 2"));
  const two = await focusedPhoto(board);
  assert.notEqual(two.src, one.src, "the second photo is another picture");
  await board.keyboard.press("ArrowLeft");
  await poll("photo 1 again", () => text(board.locator(sel("focus-photo-caption"))), (v) => v.startsWith("Photo 1 of 2"));
  await audit(board, "full-size photo (1920x1080)");
  await board.screenshot({ path: path.join(shots, "board-photo-full.png") });
  await board.keyboard.press("Escape");
  await waitVisible(overlay, false, "the full-size view");
  assert.equal(await opener.evaluate((b) => b === document.activeElement), true, "the focus goes back to the thumbnail");

  // The facilitator hides photo 1 in the full-size view: gone from the board (and from Ana's
  // copy of the document), photo 2 shown in its place; Undo brings it back.
  await opener.click();
  await waitVisible(overlay, true, "the full-size view");
  await focusedPhoto(board);
  await board.locator(sel("focus-photo-hide")).click();
  await poll("photo 2 in the full-size view", () => text(board.locator(sel("focus-photo-caption"))), (v) => v.startsWith("Photo 1 of 1"));
  // The undo toast leaves the full-size view's buttons uncovered.
  const toastBox = await (await undoToast(board)).boundingBox();
  for (const id of ["focus-photo-hide", "focus-close"]) {
    const b = await board.locator(sel(id)).boundingBox();
    assert.ok(b.y + b.height <= toastBox.y || b.y >= toastBox.y + toastBox.height || b.x + b.width <= toastBox.x || b.x >= toastBox.x + toastBox.width, `the toast does not cover ${id}`);
  }
  await board.keyboard.press("Escape");
  await waitCount(thumbs(board, noteId), 1, "thumbnails left after the hide");
  assert.equal(await thumbs(board, noteId).getAttribute("data-photo-id"), second);
  await (await undoToast(board)).locator(sel("undo-button")).click();
  await waitThumbs(board, noteId, 2, "both photos back after Undo");

  // From the card's menu: "Hide photo 2"; Ctrl+Z undoes it; hidden again, "show hidden" offers
  // "1 photo hidden — show", which shows it.
  let menu = await openNoteMenu(card(board, noteId));
  assert.deepEqual(await menu.locator(sel("note-hide-photo")).allTextContents(), ["Hide photo 1", "Hide photo 2"]);
  await menu.locator(`${sel("note-hide-photo")}[data-photo-id="${second}"]`).click();
  await waitCount(thumbs(board, noteId), 1, "thumbnails left after hiding photo 2");
  await undoToast(board);
  await board.keyboard.press("Control+z");
  await waitThumbs(board, noteId, 2, "photo 2 back after Ctrl+Z");
  menu = await openNoteMenu(card(board, noteId));
  await menu.locator(`${sel("note-hide-photo")}[data-photo-id="${second}"]`).click();
  await waitCount(thumbs(board, noteId), 1, "thumbnails left after hiding photo 2 again");
  const showHidden = card(board, noteId).locator(sel("note-photos-hidden"));
  assert.equal(await showHidden.isVisible(), false, "no hidden-photo affordance until show hidden is on");
  await board.locator(sel("show-hidden")).click();
  await waitVisible(showHidden, true, "1 photo hidden — show");
  assert.equal(await text(showHidden), "1 photo hidden — show");
  await audit(board, "show hidden with a hidden photo (1920x1080)");

  // An observer's tablet by touch (1180x820): the photos, not the hidden one, no hide control.
  const tablet = await (await browser.newContext(TABLET, "tablet")).newPage();
  await joinByCode(tablet, origin, lab.joinCode, "Dee");
  await open(tablet, `${origin}/lab/${lab.labId}/board`);
  await waitThumbs(tablet, noteId, 1, "the tablet's photos of Ana's note");
  assert.equal(await thumbs(tablet, noteId).getAttribute("data-photo-id"), first, "the hidden photo is not on the tablet");
  await waitThumbs(tablet, lateId, 1, "the tablet's late photo");
  const tbox = await thumbs(tablet, noteId).boundingBox();
  assert.ok(tbox.width >= 80, `a thumbnail a fingertip wide on the tablet (${tbox.width})`);
  assert.equal(await card(tablet, noteId).locator(sel("note-photos-hidden")).isVisible(), false, "no hidden-photo control for an observer");
  await thumbs(tablet, noteId).tap();
  await waitVisible(tablet.locator(sel("focus-overlay")), true, "the tablet's full-size view");
  assert.ok((await focusedPhoto(tablet)).inside, "the photo fits the tablet's screen");
  assert.equal(await tablet.locator(sel("focus-photo-hide")).isVisible(), false, "no hide control in an observer's full-size view");
  await audit(tablet, "full-size photo (tablet 1180x820)");
  await tablet.screenshot({ path: path.join(shots, "board-photo-tablet.png") });
  await tablet.keyboard.press("Escape");
  const tabletMenu = await openNoteMenu(card(tablet, noteId));
  assert.equal(await tabletMenu.locator(sel("note-hide-photo")).count(), 0, "no Hide photo in an observer's menu");
  await audit(tablet, "board with photos (tablet 1180x820)");
  await tablet.screenshot({ path: path.join(shots, "board-photos-tablet.png") });

  // The facilitator shows the hidden photo again: back on the board and the tablet.
  await showHidden.click();
  await waitThumbs(board, noteId, 2, "both photos after show");
  await waitVisible(showHidden, false, "the hidden-photo affordance");
  await waitThumbs(tablet, noteId, 2, "both photos on the tablet");

  // Replay: the replayed notes show their photos, read-only (no hide control anywhere).
  await board.locator(sel("show-hidden")).click();
  await board.locator(sel("replay-toggle")).click();
  const slider = board.locator(sel("replay-slider"));
  await slider.waitFor({ state: "visible" });
  await slider.fill(await slider.getAttribute("max"));
  await waitThumbs(board, noteId, 2, "the photos in replay");
  assert.equal(await (await openNoteMenu(card(board, noteId))).locator(sel("note-hide-photo")).count(), 0, "no Hide photo in replay");
  await board.keyboard.press("Escape");
  await thumbs(board, noteId).first().click();
  await focusedPhoto(board);
  assert.equal(await board.locator(sel("focus-photo-hide")).isVisible(), false, "no hide control in replay's full-size view");
  await board.keyboard.press("Escape");
  await board.locator(sel("replay-live")).click();
  await waitVisible(board.locator(sel("replay-bar")), false, "the replay bar");

  // Presenter mode: larger thumbnails, in one row; a click opens the photo full size.
  await board.locator(sel("presenter-toggle")).click();
  await poll("presenter mode", () => board.locator(sel("board")).getAttribute("class"), (c) => c.includes("is-presenter"));
  const pbox = await thumbs(board, noteId).first().boundingBox();
  assert.ok(pbox.width > box.width, `larger thumbnails in presenter mode (${pbox.width} > ${box.width})`);
  assert.ok(pbox.y + pbox.height <= 1080, "the thumbnail is on the screen");
  const rows = await thumbs(board, noteId).evaluateAll((bs) => new Set(bs.map((b) => Math.round(b.getBoundingClientRect().top))).size);
  assert.equal(rows, 1, "a note's photos in one row");
  await board.screenshot({ path: path.join(shots, "board-photos-presenter.png") });
  await thumbs(board, noteId).nth(1).click();
  await waitVisible(overlay, true, "the full-size view in presenter mode");
  assert.equal((await focusedPhoto(board)).inside, true);
  assert.match(await text(board.locator(sel("focus-photo-caption"))), /^Photo 2 of 2/);
  await audit(board, "full-size photo in presenter mode");
  await board.keyboard.press("Escape");
});
