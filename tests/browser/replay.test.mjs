// Scenario: replay on the projector board. Phones post notes at different moments of a lesson
// (each device's clock is set with Playwright's `clock.setFixedTime`, so Automerge stamps every
// change with a known time; the timers keep running) and one calls a time-out. The facilitator
// opens Replay: the slider starts at the lesson's start, marks the lesson start and the time-out,
// and at an early moment shows only the early note; every editing control is gone; a note posted
// during the replay is not shown but lengthens the slider; playing at 600× reaches the live board, which has that note.
// The same at 1180x820 by touch. axe on each state. Screenshots `board-replay.png` and
// `board-replay-tablet.png` go to a temp dir unless LABBOARD_SCREENSHOT_DIR names one.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { TABLET, TEST_TIMEOUT, audit, boardNote, checkBrowserLog, joinByCode, poll, postNote, sel, waitAttr, waitCount } from "./harness.mjs";
import { boardHasPhases, newPhone, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";
import { boardAt, startPhase } from "./board-helpers.mjs";
import { callTimeout } from "./phone.mjs";

const MINUTE = 60_000;
/** The lesson starts two hours ago, on a whole minute: every device clock below is in the past. */
const lessonStart = () => Math.floor((Date.now() - 120 * MINUTE) / MINUTE) * MINUTE;

/** A phone whose clock reads `at` (ms), joined to the lab and online. */
async function phoneAt(browser, origin, joinCode, name, at) {
  const page = await newPhone(browser, `phone-${name}`);
  await page.clock.setFixedTime(at);
  await joinByCode(page, origin, joinCode, name);
  await waitAttr(page, "connection", "data-state", "online");
  return page;
}

/** The texts of the notes the board shows now, sorted. */
const shownNotes = (board) => board.locator(`${sel("board-note")} ${sel("note-body")}`).evaluateAll((els) => els.map((e) => e.textContent.trim()).sort());

/** The same `HH:MM` the board writes for a time (the page's locale and time zone). */
const clockIn = (page, ms) => page.evaluate((t) => new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }), ms);

/** Every control that changes the board, and how many of them the board shows enabled. */
const EDITING = ["timeout-call", "timeout-end", "phase-next", "phases-settings", "categories-settings", "agreement-add", "rotate-code", "note-pin", "note-hide", "note-highlight", "note-move", "cluster-new-label", "show-hidden"];
async function enabledEditing(board) {
  const found = [];
  for (const id of EDITING) {
    for (const el of await board.locator(sel(id)).all()) if ((await el.isVisible()) && (await el.isEnabled())) found.push(id);
  }
  for (const el of await board.locator(sel("phase-item")).all()) if (await el.isEnabled()) found.push("phase-item");
  return found;
}

/** Moves the slider to `ms` the way a user does (fill dispatches `input`). */
async function seek(board, ms) {
  await board.locator(sel("replay-slider")).fill(String(Math.floor(ms / 1000)));
}

test("replay: the board at an early moment, marks, no editing, and play back to live (1920x1080)", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: replay" }, { colorScheme: "light" });
  if (!(await boardHasPhases(t, board))) return;
  const start = lessonStart();
  await board.clock.setFixedTime(start);
  await startPhase(board, "lesson-1");

  const ana = await phoneAt(browser, origin, lab.joinCode, "Ana", start + 2 * MINUTE);
  await postNote(ana, "strategies", "Early: counted on fingers");
  const ben = await phoneAt(browser, origin, lab.joinCode, "Ben", start + 15 * MINUTE);
  await postNote(ben, "student-thinking", "Middle: drew two ten frames");
  await ana.clock.setFixedTime(start + 25 * MINUTE);
  await callTimeout(ana);
  await ana.clock.setFixedTime(start + 26 * MINUTE);
  await postNote(ana, "teacher-moves", "During the time-out: asked why ten");
  await ben.clock.setFixedTime(start + 40 * MINUTE);
  await postNote(ben, "strategies", "Late: wrote 7 + 3 = 10");
  await waitCount(board.locator(sel("board-note")), 4, "the four notes on the live board");
  await board.clock.setFixedTime(start + 45 * MINUTE);

  // Replay opens at the lesson's start: no note yet, the banner says when.
  assert.ok((await enabledEditing(board)).includes("phases-settings"), "the live board offers the facilitator's tools");
  await board.locator(sel("replay-toggle")).click();
  await waitVisible(board.locator(sel("replay-bar")), true, "the replay bar");
  await poll("no note at the lesson's start", () => shownNotes(board), (n) => n.length === 0);
  assert.equal(await text(board.locator(sel("replay-banner"))), `Replay — ${await clockIn(board, start)}`);
  const slider = board.locator(sel("replay-slider"));
  assert.equal(await slider.getAttribute("min"), String(start / 1000));
  assert.equal(await slider.getAttribute("max"), String((start + 40 * MINUTE) / 1000));

  // The lesson's start and the time-out are marked on the slider.
  const marks = await board.locator(sel("replay-mark")).evaluateAll((els) => els.map((e) => [e.dataset.kind, Number(e.dataset.time)]));
  assert.deepEqual(marks, [["phase", start / 1000], ["timeout", (start + 25 * MINUTE) / 1000]]);

  // Nothing can be changed while replaying.
  assert.deepEqual(await enabledEditing(board), [], "no editing control during replay");
  assert.equal(await board.locator(sel("replay-toggle")).isVisible(), false);

  // An early moment shows only the early note; a mark moves the slider to the time-out.
  await seek(board, start + 5 * MINUTE);
  await poll("only the early note", () => shownNotes(board), (n) => JSON.stringify(n) === JSON.stringify(["Early: counted on fingers"]));
  assert.equal(await text(board.locator(sel("replay-banner"))), `Replay — ${await clockIn(board, start + 5 * MINUTE)}`);
  await audit(board, "replay at an early moment (1920x1080)");
  await board.screenshot({ path: path.join(screenshotDir(t), "board-replay.png") });
  await board.locator(`${sel("replay-mark")}[data-kind=timeout]`).click();
  await poll("the notes up to the time-out", () => shownNotes(board), (n) => n.length === 2);
  await waitVisible(board.locator(sel("timeout-banner")), true, "the replayed time-out's banner");
  assert.deepEqual(await enabledEditing(board), [], "no editing control during a replayed time-out");

  // A note posted now reaches the document but not the replayed board.
  await ben.clock.setFixedTime(start + 50 * MINUTE);
  await postNote(ben, "wonderings", "Arrives during replay");
  await poll("the phone's note stored", () => ben.locator(`${sel("feed-note")}[data-status="synced"]`).count(), (n) => n >= 3);
  assert.deepEqual(await shownNotes(board), ["Early: counted on fingers", "Middle: drew two ten frames"]);
  // The slider grows to reach it (its clock is ahead of the board's, so it counts at the board's now).
  await poll("the slider reaches the new note", () => slider.getAttribute("max"), (v) => v === String((start + 45 * MINUTE) / 1000));
  assert.deepEqual(await shownNotes(board), ["Early: counted on fingers", "Middle: drew two ten frames"], "the moment shown stays");

  // Play at 600× from just after the time-out: the notes arrive in order, then the live board.
  await seek(board, start + 27 * MINUTE);
  await board.locator(sel("replay-speed")).selectOption("600");
  const seen = [];
  await board.locator(sel("replay-play")).click();
  await poll(
    "play to reach the live board",
    async () => {
      const live = !(await board.locator(sel("replay-bar")).isVisible());
      if (!live) seen.push((await shownNotes(board)).length);
      return live;
    },
    (live) => live,
  );
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "notes only ever arrive while playing");
  await waitCount(board.locator(sel("board-note")), 5, "the live board with the note posted during replay");
  await waitVisible(boardNote(board, "wonderings", "Arrives during replay"), true, "the note posted during replay");
  assert.ok((await enabledEditing(board)).includes("phases-settings"), "back to live, the tools are back");

  // "Back to live" returns at once too.
  await board.locator(sel("replay-toggle")).click();
  await poll("replay at the start", () => shownNotes(board), (n) => n.length === 0);
  await board.locator(sel("replay-live")).click();
  await waitCount(board.locator(sel("board-note")), 5, "the live board again");
  assert.equal(await board.evaluate(() => document.activeElement?.dataset.testid), "replay-toggle");
  checkBrowserLog(t, browser);
});

test("replay by touch on a tablet (1180x820), dark theme", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await boardAt(t, TABLET, { title: "Making ten: replay on a tablet" }, "dark");
  if (!(await boardHasPhases(t, board))) return;
  const start = lessonStart();
  await board.clock.setFixedTime(start);
  await startPhase(board, "lesson-1");
  const ana = await phoneAt(browser, origin, lab.joinCode, "Ana", start + 3 * MINUTE);
  await postNote(ana, "strategies", "First minutes: counted on");
  await ana.clock.setFixedTime(start + 20 * MINUTE);
  await callTimeout(ana);
  await ana.clock.setFixedTime(start + 30 * MINUTE);
  await postNote(ana, "student-thinking", "Later: made a ten");
  await waitCount(board.locator(sel("board-note")), 2, "both notes on the live board");
  await board.clock.setFixedTime(start + 31 * MINUTE);

  await board.locator(sel("replay-toggle")).tap();
  await waitVisible(board.locator(sel("replay-bar")), true, "the replay bar");
  assert.deepEqual(await enabledEditing(board), [], "no editing control during replay");
  await board.locator(`${sel("replay-mark")}[data-kind=timeout]`).tap();
  await poll("the first note only", () => shownNotes(board), (n) => JSON.stringify(n) === JSON.stringify(["First minutes: counted on"]));
  const mark = await board.locator(`${sel("replay-mark")}[data-kind=timeout]`).boundingBox();
  assert.ok(mark && mark.width >= 24 && mark.height >= 24, "the time-out mark is a fingertip target");
  const bar = await board.locator(sel("replay-bar")).boundingBox();
  assert.ok(bar && bar.x >= 0 && bar.x + bar.width <= 1180, "the replay bar fits the tablet's width");
  await audit(board, "replay on a tablet");
  await board.screenshot({ path: path.join(screenshotDir(t), "board-replay-tablet.png") });
  await board.locator(sel("replay-speed")).selectOption("600");
  await board.locator(sel("replay-play")).tap();
  await waitVisible(board.locator(sel("replay-bar")), false, "the live board after playing");
  await waitCount(board.locator(sel("board-note")), 2, "both notes, live");
  checkBrowserLog(t, browser);
});
