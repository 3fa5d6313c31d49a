// Scenario: the facilitator edits the lab's phases on the projector board. Lesson 1 is running
// with a phone connected; in the "Phases" panel the facilitator renames "Lesson 1" to
// "Lesson 1 (Room 12)" (the phase bar and the phone follow live), adds a lesson "Lesson 3"
// (a `lesson-<random>` id, last), moves it up past the final debrief, lesson 2 and debrief 1 (the
// phase bar and "Start …" follow; the move button keeps focus); a phone joining afterwards shows
// the renamed current phase; starting the new lesson shows it, with the time-out button, on both
// phones; every default phase is still there and everything survives a reload of the board.
//
// Needs a server that creates schema v2 boards (skipped otherwise, like lab-run.test.mjs).
// Screenshots go to a temp dir unless LABBOARD_SCREENSHOT_DIR names one (relative to the repo
// root): phases-panel.png.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { TEST_TIMEOUT, checkBrowserLog, poll, sel, waitAttr, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhone, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";

const DEFAULT_IDS = ["plan", "lesson-1", "debrief-1", "lesson-2", "final-debrief"];

test("the facilitator renames, adds and reorders phases; the phase bar and the phones follow", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(
    t,
    { title: "Making ten: phases", school: "Hillside", grade: "2" },
    { colorScheme: "light" },
  );
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board))) return;

  const phone = (name) => joinPhone(browser, origin, lab.joinCode, name, { colorScheme: "light" });
  const Ana = await phone("Ana");

  /** The phase bar, in order: [id, label]. */
  const bar = () => board.locator(sel("phase-item")).evaluateAll((els) => els.map((el) => [el.dataset.phase, el.textContent.trim()]));
  const barIds = async () => (await bar()).map(([id]) => id);
  const phoneShows = (page, label) => poll(`the phone showing "${label}"`, () => text(page.locator(sel("phase-current"))), (v) => v.startsWith(label));

  // Lesson 1 runs; Ana's phone shows it.
  await board.locator(`${sel("phase-item")}[data-phase="lesson-1"]`).click();
  await waitAttr(Ana, "phase-current", "data-phase", "lesson-1");
  await phoneShows(Ana, "Lesson 1");

  // The panel lists the default phases in order, the current one marked.
  const settingsButton = board.locator(sel("phases-settings"));
  await waitVisible(settingsButton, true, "the Phases button");
  await settingsButton.click();
  const panel = board.locator(sel("phases-panel"));
  await waitVisible(panel, true, "the phase settings");
  assert.equal(await settingsButton.getAttribute("aria-expanded"), "true");
  const rowIds = () => panel.locator(sel("phase-row")).evaluateAll((els) => els.map((el) => el.dataset.phase));
  assert.deepEqual(await rowIds(), DEFAULT_IDS);
  const row = (id) => panel.locator(`${sel("phase-row")}[data-phase="${id}"]`);
  assert.equal(await row("lesson-1").getAttribute("aria-current"), "step");
  assert.equal(await row("lesson-1").getAttribute("data-kind"), "lesson");
  assert.equal(await row("debrief-1").getAttribute("data-kind"), "debrief");
  assert.equal(await row("plan").getAttribute("data-kind"), "other");
  assert.equal(await row("plan").locator(sel("phase-up")).isDisabled(), true, "the first phase cannot move up");
  assert.equal(await row("final-debrief").locator(sel("phase-down")).isDisabled(), true, "the last phase cannot move down");

  // Rename the running lesson: the phase bar and the phone follow, the id stays.
  await row("lesson-1").locator(sel("phase-label")).fill("Lesson 1 (Room 12)");
  await row("lesson-1").locator(sel("phase-label")).press("Enter");
  await poll("the renamed phase in the bar", bar, (items) => items.some(([id, label]) => id === "lesson-1" && label === "Lesson 1 (Room 12)"));
  await phoneShows(Ana, "Lesson 1 (Room 12)");
  assert.equal(await Ana.locator(sel("phase-current")).getAttribute("data-phase"), "lesson-1");
  assert.equal(await board.locator(sel("phase-bar")).getAttribute("data-current"), "lesson-1");

  // Add a lesson: a `lesson-…` id, after the last phase.
  await board.fill(sel("phase-new-label"), "Lesson 3");
  await board.locator(sel("phase-new-kind")).selectOption("lesson");
  await board.locator(sel("phase-new-add")).click();
  await poll("six phases in the bar", async () => (await bar()).length, (n) => n === 6);
  const [newId, newLabel] = (await bar()).at(-1);
  assert.match(newId, /^lesson-[0-9a-z]+$/, "a new lesson's id starts with lesson");
  assert.equal(newLabel, "Lesson 3");
  assert.equal(await board.locator(sel("phase-new-label")).inputValue(), "", "the field is cleared after adding");
  await poll("the new phase's row", rowIds, (ids) => ids.at(-1) === newId);
  assert.equal(await row(newId).getAttribute("data-kind"), "lesson");

  // Move it up three times: past the final debrief, lesson 2 and debrief 1.
  const up = row(newId).locator(sel("phase-up"));
  await up.click();
  await poll("Lesson 3 before the final debrief", barIds, (ids) => JSON.stringify(ids) === JSON.stringify(["plan", "lesson-1", "debrief-1", "lesson-2", newId, "final-debrief"]));
  const focusedRow = () => board.evaluate(() => [document.activeElement?.closest("li")?.dataset.phase, document.activeElement?.dataset.testid]);
  assert.deepEqual(await focusedRow(), [newId, "phase-up"], "the move button keeps focus");
  await up.click();
  await poll("Lesson 3 before lesson 2", barIds, (ids) => JSON.stringify(ids) === JSON.stringify(["plan", "lesson-1", "debrief-1", newId, "lesson-2", "final-debrief"]));
  assert.equal(await text(board.locator(sel("phase-next"))), "Start Debrief 1");
  await board.keyboard.press("Enter"); // the focused up button, from the keyboard
  await poll("Lesson 3 right after lesson 1", barIds, (ids) => JSON.stringify(ids) === JSON.stringify(["plan", "lesson-1", newId, "debrief-1", "lesson-2", "final-debrief"]));
  await poll("the next phase", () => text(board.locator(sel("phase-next"))), (v) => v === "Start Lesson 3");
  assert.equal(await board.locator(sel("phase-next")).getAttribute("data-phase"), newId);
  assert.deepEqual(await rowIds(), await barIds(), "the panel shows the bar's order");
  await board.screenshot({ path: path.join(shots, "phases-panel.png") });
  await board.locator(sel("phases-close")).click();
  await waitVisible(panel, false, "the phase settings after Done");
  assert.equal(await settingsButton.getAttribute("aria-expanded"), "false");

  // A phone joining now shows the renamed current phase.
  const Ben = await phone("Ben");
  await waitAttr(Ben, "phase-current", "data-phase", "lesson-1");
  await phoneShows(Ben, "Lesson 1 (Room 12)");

  // Start the new lesson: both phones show it, with the time-out button (it is a lesson).
  await board.locator(sel("phase-next")).click();
  await waitAttr(board, "phase-bar", "data-current", newId);
  for (const page of [Ana, Ben]) {
    await waitAttr(page, "phase-current", "data-phase", newId);
    await phoneShows(page, "Lesson 3");
    await waitVisible(page.locator(sel("timeout-call")), true, "the time-out button in the new lesson");
  }
  assert.equal(await board.locator(`${sel("phase-item")}[data-phase="${newId}"]`).getAttribute("aria-current"), "step");

  // Nothing was lost: every default phase is still there, and all of it survives a reload.
  await board.reload();
  await board.waitForSelector("body[data-ready='1']", { state: "attached" });
  await waitCount(board.locator(sel("phase-item")), 6, "phases after a reload");
  assert.deepEqual(await bar(), [
    ["plan", "Plan"],
    ["lesson-1", "Lesson 1 (Room 12)"],
    [newId, "Lesson 3"],
    ["debrief-1", "Debrief 1"],
    ["lesson-2", "Lesson 2"],
    ["final-debrief", "Final debrief"],
  ]);
  assert.equal(await board.locator(sel("phase-bar")).getAttribute("data-current"), newId);

  checkBrowserLog(t, browser);
});
