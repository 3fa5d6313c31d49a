// Scenario: Lesson 1 beside Lesson 2 on the board. Three phones post notes in Lesson 1 (one
// during a time-out the facilitator records); in Debrief 1 the facilitator writes an agreement
// and the side-by-side view shows Lesson 2 as not taught yet; three phones post in Lesson 2. The
// view then shows, per category, each lesson's notes with the right counts, each lesson's
// time-outs (who, how long, how many notes during it) and totals, and Debrief 1's agreement beside
// Lesson 2, at 1920x1080 and on a tablet (1180x820, touch, dark theme). Cards are kept, not rebuilt, when a
// note arrives. axe runs on each state.
//
// Needs a server that creates schema v2 boards (skipped otherwise, like lab-run.test.mjs).
// The screenshot board-lessons.png (the README's: the final debrief, presenter mode) goes to a
// temp dir unless LABBOARD_SCREENSHOT_DIR names one (relative to the repo root); `npm run
// screenshots` writes it to docs/screenshots.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { TABLET, TEST_TIMEOUT, audit, boardNote, checkBrowserLog, joinByCode, open, poll, postNote, sel, waitAttr, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhones, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";

/** Switches a board page to the Lesson 1 / Lesson 2 view. */
async function showLessons(page, { touch = false } = {}) {
  const toggle = page.locator(`${sel("view-toggle")}[data-view="lessons"]`);
  if (touch) await toggle.tap();
  else await toggle.click();
  await waitVisible(page.locator(sel("compare-view")), true, "the Lesson 1 / Lesson 2 view");
}

/** The texts of the notes in one category and lesson ("first" or "second"), top to bottom. */
const cellTexts = (page, category, side) =>
  page
    .locator(`${sel("compare-row")}[data-category="${category}"] ${sel("compare-cell")}[data-side="${side}"] ${sel("note-body")}`)
    .evaluateAll((els) => els.map((el) => el.textContent.trim()));

const cellCount = (page, category, side) =>
  page.locator(`${sel("compare-row")}[data-category="${category}"] ${sel("compare-cell")}[data-side="${side}"]`).getAttribute("data-count");

/** Closes the undo toast of the last phase change, so a screenshot shows the view whole. */
async function dismissUndo(page) {
  const close = page.locator(sel("undo-dismiss"));
  if (await close.isVisible()) await close.click();
  await waitVisible(page.locator(sel("undo-toast")), false, "the undo toast");
}

const lesson = (page, side) => page.locator(`${sel("compare-lesson")}[data-side="${side}"]`);

test("Lesson 1 beside Lesson 2: notes per category, counts, time-outs and debrief 1's agreements", { timeout: 4 * TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(
    t,
    { title: "Making ten with ten-frames", school: "Hillside Elementary", grade: "2" },
    { colorScheme: "light" },
  );
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board))) return;
  const phones = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben", "Cy"]);
  const { Ana, Ben, Cy } = phones;

  const goTo = async (phase) => {
    await board.locator(`${sel("phase-item")}[data-phase="${phase}"]`).click();
    await waitAttr(board, "phase-bar", "data-current", phase);
    for (const page of [Ana, Ben, Cy]) await waitAttr(page, "phase-current", "data-phase", phase);
  };

  // Lesson 1, with a time-out the facilitator records from the board.
  await goTo("lesson-1");
  const lesson1 = [
    [Ana, "student-thinking", "T. counted on from 8: 9, 10, 11, 12, 13 on her fingers"],
    [Ben, "strategies", "R. filled one ten-frame with 8 and moved 2 counters over to make 10"],
    [Cy, "teacher-moves", "Teacher asked: how do you know it is 13? Waited 10 seconds"],
    [Ana, "wonderings", "Do they see the ten-frame as 10, or count every dot?"],
  ];
  for (const [page, category, body] of lesson1) await postNote(page, category, body);
  await board.locator(sel("timeout-call")).click();
  await waitVisible(Ben.locator(sel("timeout-banner")), true, "the time-out on Ben's phone");
  const duringTimeout = "J. said 8 + 5 is 13 because 5 is 2 and 3";
  await postNote(Ben, "strategies", duringTimeout);
  await board.locator(sel("timeout-end")).click();
  await waitVisible(Ben.locator(sel("timeout-banner")), false, "the time-out ended on Ben's phone");
  await postNote(Cy, "student-thinking", "M. wrote 8 + 5 = 12 and then fixed it after counting again");
  for (const [, category, body] of lesson1) await waitCount(boardNote(board, category, body), 1, `"${body}" on the board`);

  // Debrief 1: an agreement; Lesson 2 is not taught yet.
  await goTo("debrief-1");
  const agreement = "Start with a quick look at a full ten-frame before the task";
  await waitVisible(board.locator(sel("agreements-panel")), true, "the agreements panel");
  await board.fill(sel("agreement-new-text"), agreement);
  await board.fill(sel("agreement-new-owner"), "Kim");
  await board.locator(sel("agreement-add")).click();
  await waitCount(board.locator(sel("agreement-item")).filter({ hasText: agreement }), 1, "the agreement in the panel");

  await showLessons(board);
  await waitAttr(board, "compare-lesson", "data-state", "taught");
  assert.equal(await lesson(board, "second").getAttribute("data-state"), "not-taught");
  assert.equal(await text(lesson(board, "second").locator(sel("compare-lesson-state"))), "Not taught yet");
  assert.equal(await lesson(board, "second").getAttribute("data-phase"), "lesson-2");
  assert.deepEqual(await cellTexts(board, "student-thinking", "second"), []);
  assert.equal(
    await text(board.locator(`${sel("compare-row")}[data-category="strategies"] ${sel("compare-cell")}[data-side="second"] .compare-empty`)),
    "Not taught yet",
  );
  await poll("the agreement beside Lesson 2", () => board.locator(`${sel("compare-agreements")} ${sel("compare-agreement")}`).allTextContents(), (v) => v.length === 1 && v[0].includes(agreement));
  await audit(board, "Lesson 1 / Lesson 2 view in debrief 1 (1920x1080)");

  // Lesson 2: three phones again; the view updates live and keeps its cards.
  await goTo("lesson-2");
  await waitAttr(board, "compare-lesson", "data-state", "taught");
  await poll("Lesson 2 in progress", () => lesson(board, "second").getAttribute("data-state"), (v) => v === "in-progress");
  const keptCard = board.locator(`${sel("compare-row")}[data-category="strategies"] ${sel("compare-cell")}[data-side="first"] ${sel("compare-note")}`).first();
  await keptCard.evaluate((el) => (el.dataset.marker = "kept"));
  const lesson2 = [
    [Ana, "strategies", "T. pointed at the full ten-frame and said 10, then counted 11, 12, 13"],
    [Ben, "student-thinking", "R. explained to J.: 8 needs 2 to make 10, 5 is 2 and 3"],
    [Cy, "student-thinking", "M. checked 8 + 5 with the ten-frame and kept 13"],
    [Ben, "wonderings", "Would they make 10 with 9 + 4 without the frames?"],
    [Cy, "teacher-moves", "Teacher let J. explain at the board before correcting"],
  ];
  for (const [page, category, body] of lesson2) await postNote(page, category, body);
  // Every phone's note reaches the board (the last one posted too) before the view is read.
  await poll(
    "all 5 of Lesson 2's notes in the view",
    () => board.locator(`${sel("compare-cell")}[data-side="second"] ${sel("note-body")}`).count(),
    (n) => n === lesson2.length,
  );

  // Per category, each lesson's notes (oldest first) and counts.
  const expected = {
    "student-thinking": [[lesson1[0][2], "M. wrote 8 + 5 = 12 and then fixed it after counting again"], [lesson2[1][2], lesson2[2][2]]],
    strategies: [[lesson1[1][2], duringTimeout], [lesson2[0][2]]],
    "teacher-moves": [[lesson1[2][2]], [lesson2[4][2]]],
    wonderings: [[lesson1[3][2]], [lesson2[3][2]]],
    "next-steps": [[], []],
  };
  for (const [category, [first, second]] of Object.entries(expected)) {
    assert.deepEqual(await cellTexts(board, category, "first"), first, `${category} in Lesson 1`);
    assert.deepEqual(await cellTexts(board, category, "second"), second, `${category} in Lesson 2`);
    assert.equal(await cellCount(board, category, "first"), String(first.length));
    assert.equal(await cellCount(board, category, "second"), String(second.length));
  }
  assert.deepEqual(
    await board.locator(sel("compare-row")).evaluateAll((els) => els.map((el) => el.dataset.category)),
    ["student-thinking", "strategies", "teacher-moves", "wonderings", "next-steps"],
    "one row per category, in the board's order",
  );
  assert.equal(await keptCard.getAttribute("data-marker"), "kept", "a card stays the same element while notes arrive");

  // Each lesson's totals and time-outs.
  assert.equal(await text(lesson(board, "first").locator(sel("compare-lesson-title"))), "Lesson 1");
  assert.equal(await text(lesson(board, "first").locator(sel("compare-lesson-totals"))), "6 notes · 1 time-out");
  assert.equal(await text(lesson(board, "second").locator(sel("compare-lesson-totals"))), "5 notes · 0 time-outs");
  assert.match(await text(lesson(board, "second").locator(sel("compare-lesson-state"))), /^Teaching now/);
  const timeouts = lesson(board, "first").locator(sel("compare-timeout"));
  await waitCount(timeouts, 1, "Lesson 1's time-out");
  assert.equal(await timeouts.getAttribute("data-notes"), "1");
  assert.match(await text(timeouts.locator("span").last()), /^Min 0 · called by Facilitator · \d+ s · 1 note during it$/);
  assert.equal(await lesson(board, "second").locator(sel("compare-timeout")).count(), 0);
  // The time-out's note is marked on its card.
  const marked = await board
    .locator(sel("compare-note"))
    .evaluateAll((els) => els.filter((el) => !el.querySelector("[data-testid=board-note-timeout]").hidden).map((el) => el.querySelector("[data-testid=note-body]").textContent.trim()));
  assert.deepEqual(marked, [duringTimeout]);

  // Debrief 1's agreement beside Lesson 2: the rail is to the right of Lesson 2's column.
  assert.equal(await text(board.locator(sel("compare-agreements-title"))), "Agreed in Debrief 1");
  const railBox = await board.locator(sel("compare-agreements")).boundingBox();
  const secondBox = await lesson(board, "second").boundingBox();
  assert.ok(railBox.x >= secondBox.x + secondBox.width, "the agreements sit beside Lesson 2");
  assert.ok(railBox.y < secondBox.y + secondBox.height, "at the height of Lesson 2's head");

  // Readable from the back of the room: note text at least 24 px, nothing wider than the screen.
  const sizes = await board.locator(`${sel("compare-note")} ${sel("note-body")}`).evaluateAll((els) => els.map((el) => parseFloat(getComputedStyle(el).fontSize)));
  assert.ok(sizes.length === 11 && sizes.every((s) => s >= 24), `note text sizes ${sizes}`);
  assert.equal(await board.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, "no sideways scroll");
  // The view shows the carried agreements itself, and chooses its own phases.
  assert.equal(await board.locator(sel("agreements-carried-board")).isVisible(), false, "no second band of the same agreements");
  await audit(board, "Lesson 1 / Lesson 2 view in lesson 2 (1920x1080)");

  // The final debrief, in presenter mode: both lessons taught, side by side.
  await goTo("final-debrief");
  await poll("Lesson 2 taught", () => lesson(board, "second").getAttribute("data-state"), (v) => v === "taught");
  assert.match(await text(lesson(board, "second").locator(sel("compare-lesson-state"))), /^Taught /);
  assert.equal(await text(lesson(board, "second").locator(sel("compare-lesson-totals"))), "5 notes · 0 time-outs");
  assert.deepEqual(await cellTexts(board, "student-thinking", "second"), expected["student-thinking"][1]);
  await audit(board, "Lesson 1 / Lesson 2 view in the final debrief (1920x1080, presenter)");
  // The agreements panel opens by itself in a debrief; the view's rail already shows debrief 1's.
  const panelToggle = board.locator(sel("agreements-toggle"));
  if ((await panelToggle.getAttribute("aria-pressed")) === "true") await panelToggle.click();
  await waitVisible(board.locator(sel("agreements-panel")), false, "the agreements panel");
  await dismissUndo(board);
  await board.screenshot({ path: path.join(shots, "board-lessons.png") });

  // A tablet (touch) at the debrief table, in the dark theme: the same view.
  const tablet = await (await browser.newContext({ ...TABLET, colorScheme: "dark" }, "tablet")).newPage();
  await joinByCode(tablet, origin, lab.joinCode, "Dee");
  await open(tablet, `${origin}/lab/${lab.labId}/board`);
  await showLessons(tablet, { touch: true });
  await poll("the tablet's Lesson 2 notes", () => cellTexts(tablet, "student-thinking", "second"), (v) => v.length === 2);
  for (const [category, [first, second]] of Object.entries(expected)) {
    assert.deepEqual(await cellTexts(tablet, category, "first"), first, `${category} in Lesson 1 on the tablet`);
    assert.deepEqual(await cellTexts(tablet, category, "second"), second, `${category} in Lesson 2 on the tablet`);
  }
  await poll("the agreement on the tablet", () => tablet.locator(sel("compare-agreement")).allTextContents(), (v) => v.length === 1 && v[0].includes(agreement));
  assert.equal(await tablet.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, "no sideways scroll on the tablet");
  assert.equal(await tablet.evaluate(() => document.documentElement.dataset.theme), "dark");
  await audit(tablet, "Lesson 1 / Lesson 2 view (tablet 1180x820, dark)");

  checkBrowserLog(t, browser);
});
