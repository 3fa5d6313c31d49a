// Scenario: Lesson 1 | 2 on a lab whose facilitator renamed and added phases. Lesson 2 is renamed
// "Second visit" and a third lesson is added before the final debrief; the view names lessons by
// their labels, compares by phase order (the latest lesson taught and the one before it), offers
// a choice of the two lessons once the lab has three, and follows that choice. A hidden note
// leaves the view and comes back with the undo toast. Dark theme; axe runs on the view and on the
// empty Picks and Next steps views.
//
// Needs a server that creates schema v2 boards or later (skipped otherwise). The screenshot
// board-lessons-three.png goes to a temp dir unless LABBOARD_SCREENSHOT_DIR names one.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { TEST_TIMEOUT, audit, checkBrowserLog, poll, postNote, sel, waitAttr } from "./harness.mjs";
import { noteAction, undoToast } from "./board-helpers.mjs";
import { boardHasPhases, joinPhones, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";

const lesson = (page, side) => page.locator(`${sel("compare-lesson")}[data-side="${side}"]`);
const cellTexts = (page, category, side) =>
  page
    .locator(`${sel("compare-row")}[data-category="${category}"] ${sel("compare-cell")}[data-side="${side}"] ${sel("note-body")}`)
    .evaluateAll((els) => els.map((el) => el.textContent.trim()));

test("Lesson 1 | 2 follows renamed and added lessons, and the facilitator's choice of two", { timeout: 2 * TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: three visits", school: "Hillside", grade: "2" }, { colorScheme: "dark" });
  if (!(await boardHasPhases(t, board))) return;
  const shots = screenshotDir(t);
  const { Ana } = await joinPhones(browser, origin, lab.joinCode, ["Ana"]);

  // Rename Lesson 2, add a third lesson and move it before the final debrief.
  await board.locator(sel("phases-settings")).click();
  const panel = board.locator(sel("phases-panel"));
  await waitVisible(panel, true, "the phase settings");
  const row = (id) => panel.locator(`${sel("phase-row")}[data-phase="${id}"]`);
  await row("lesson-2").locator(sel("phase-label")).fill("Second visit");
  await row("lesson-2").locator(sel("phase-label")).press("Enter");
  await board.fill(sel("phase-new-label"), "Third visit");
  await board.locator(sel("phase-new-kind")).selectOption("lesson");
  await board.locator(sel("phase-new-add")).click();
  const barIds = () => board.locator(sel("phase-item")).evaluateAll((els) => els.map((el) => el.dataset.phase));
  await poll("six phases", async () => (await barIds()).length, (n) => n === 6);
  const third = (await barIds()).at(-1);
  await row(third).locator(sel("phase-up")).click();
  await poll("the third lesson before the final debrief", barIds, (ids) => ids.at(-2) === third);
  await board.locator(sel("phases-close")).click();

  const goTo = async (phase) => {
    await board.locator(`${sel("phase-item")}[data-phase="${phase}"]`).click();
    await waitAttr(board, "phase-bar", "data-current", phase);
    await waitAttr(Ana, "phase-current", "data-phase", phase);
  };
  const first = "T. counted on from 8";
  const second = "T. saw 10 on the frame, then counted 11, 12, 13";
  const thirdNote = "T. said 9 + 4 is 10 and 3 without the frame";
  await goTo("lesson-1");
  await postNote(Ana, "strategies", first);
  await goTo("debrief-1");
  await goTo("lesson-2");
  await postNote(Ana, "strategies", second);

  // Labels, not ids; with three lessons the facilitator may choose, and the first two are shown.
  await board.locator(`${sel("view-toggle")}[data-view="lessons"]`).click();
  await waitVisible(board.locator(sel("compare-view")), true, "the Lesson 1 | 2 view");
  await poll("the renamed lesson", () => text(lesson(board, "second").locator(sel("compare-lesson-title"))), (v) => v === "Second visit");
  assert.equal(await text(lesson(board, "first").locator(sel("compare-lesson-title"))), "Lesson 1");
  assert.equal(await text(board.locator(sel("compare-agreements-title"))), "Agreed in Debrief 1");
  await waitVisible(board.locator(sel("compare-pick-first")), true, "the choice of lessons");
  assert.equal(await board.locator(sel("compare-pick-first")).inputValue(), "lesson-1");
  assert.equal(await board.locator(sel("compare-pick-second")).inputValue(), "lesson-2");
  assert.deepEqual(await cellTexts(board, "strategies", "first"), [first]);
  assert.deepEqual(await cellTexts(board, "strategies", "second"), [second]);

  // The third lesson starts: the view moves on to the last two lessons taught.
  await goTo(third);
  await postNote(Ana, "strategies", thirdNote);
  await poll("the third lesson compared", () => lesson(board, "second").getAttribute("data-phase"), (v) => v === third);
  assert.equal(await lesson(board, "first").getAttribute("data-phase"), "lesson-2");
  assert.equal(await text(lesson(board, "second").locator(sel("compare-lesson-title"))), "Third visit");
  assert.equal(await text(board.locator(sel("compare-agreements-title"))), "Agreed before Third visit");
  await poll("the third lesson's note", () => cellTexts(board, "strategies", "second"), (v) => v.length === 1 && v[0] === thirdNote);

  // The facilitator compares the first visit with the third.
  await board.locator(sel("compare-pick-first")).selectOption("lesson-1");
  await poll("Lesson 1 against the third visit", () => lesson(board, "first").getAttribute("data-phase"), (v) => v === "lesson-1");
  assert.equal(await lesson(board, "second").getAttribute("data-phase"), third);
  assert.deepEqual(await cellTexts(board, "strategies", "first"), [first]);
  assert.equal(await text(board.locator(sel("compare-agreements-title"))), "Agreed in Debrief 1");
  await audit(board, "Lesson 1 | 2 with three lessons (1920x1080, dark)");
  await board.screenshot({ path: path.join(shots, "board-lessons-three.png") });

  // Hiding a note from the view's card takes it out of the comparison; undo brings it back.
  const card = board.locator(sel("compare-note")).filter({ hasText: first });
  await noteAction(card, "note-hide");
  await poll("the hidden note gone", () => cellTexts(board, "strategies", "first"), (v) => v.length === 0);
  assert.equal(await text(lesson(board, "first").locator(sel("compare-lesson-totals"))), "0 notes · 0 time-outs");
  const toast = await undoToast(board);
  await toast.locator(sel("undo-button")).click();
  await poll("the note back", () => cellTexts(board, "strategies", "first"), (v) => v.length === 1 && v[0] === first);

  // The other debrief views before anyone picked or wrote a next step: they say so, in the dark
  // theme too.
  for (const [view, empty] of [["picks", "picks-empty"], ["nextsteps", "nextsteps-empty"]]) {
    await board.locator(`${sel("view-toggle")}[data-view="${view}"]`).click();
    await waitVisible(board.locator(sel(empty)), true, `the empty ${view} view`);
    await audit(board, `the empty ${view} view (1920x1080, dark)`);
  }

  checkBrowserLog(t, browser);
});
