// Scenario: the sticky-note ritual and next steps on the board. Three phones post notes in
// Lesson 1; in Debrief 1 each picks their strongest evidence on the phone; the board's Picks view shows only
// the picked notes, most picked first with the count on each card; the facilitator lowers the
// pick limit (a person's picks beyond it stop counting, live) and raises it again, then selects
// two picked notes, names the pattern and gets a cluster of them. In the final debrief two coaches
// write next steps on their phones and the board shows them grouped by coach. A tablet (observer,
// touch) sees the same views without the facilitator's tools. axe runs on each view at 1920x1080
// and 1180x820.
//
// Needs a server that creates schema v3 boards (picks, next steps).
// Screenshots go to a temp dir unless LABBOARD_SCREENSHOT_DIR names one (relative to the repo
// root): board-picks.png, board-nextsteps.png, board-picks-tablet.png.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { TABLET, TEST_TIMEOUT, audit, checkBrowserLog, feedNote, joinByCode, open, poll, postNote, sel, waitAttr, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhones, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";

async function showView(page, view, { touch = false } = {}) {
  const toggle = page.locator(`${sel("view-toggle")}[data-view="${view}"]`);
  if (touch) await toggle.tap();
  else await toggle.click();
  await waitVisible(page.locator(sel(`${view}-view`)), true, `the ${view} view`);
}

/** Closes the undo toast of the last phase change, so a screenshot shows the view whole. */
async function dismissUndo(page) {
  const close = page.locator(sel("undo-dismiss"));
  if (await close.isVisible()) await close.click();
  await waitVisible(page.locator(sel("undo-toast")), false, "the undo toast");
}

/** The picked notes as the board shows them, top to bottom: [text, count]. */
const pickedOrder = (page) =>
  page.locator(sel("picked-note")).evaluateAll((els) => els.map((el) => [el.querySelector("[data-testid=note-body]").textContent.trim(), Number(el.dataset.count)]));

test("picks ranked by count, clusters from picks, the pick limit, and next steps by coach", { timeout: 4 * TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: debrief", school: "Hillside Elementary", grade: "2" }, { colorScheme: "light" });
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board))) return;
  const phones = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben", "Cy"]);
  const { Ana, Ben, Cy } = phones;

  const goTo = async (phase) => {
    await board.locator(`${sel("phase-item")}[data-phase="${phase}"]`).click();
    await waitAttr(board, "phase-bar", "data-current", phase);
  };

  await goTo("lesson-1");
  const notes = [
    [Ana, "student-thinking", "T. counted on from 8: 9, 10, 11, 12, 13"],
    [Ben, "strategies", "R. moved 2 counters to fill the ten-frame, then saw 10 and 3"],
    [Cy, "student-thinking", "J. said 8 + 5 is 13 because 5 is 2 and 3"],
    [Ana, "teacher-moves", "Teacher waited 10 seconds before asking again"],
    [Ben, "wonderings", "Do they see 10 at a glance on the frame?"],
  ];
  const ids = [];
  for (const [page, category, body] of notes) ids.push((await postNote(page, category, body)).id);
  const body = (i) => notes[i][2];

  await goTo("debrief-1");
  // Each person picks on their phone, in this order (a tie goes to the note picked first).
  const pick = async (page, i) => {
    const button = feedNote(page, body(i)).locator(sel("note-pick"));
    await waitVisible(button, true, `Pick on "${body(i)}"`);
    await button.tap();
    await poll(`the pick of "${body(i)}"`, () => button.getAttribute("aria-pressed"), (v) => v === "true");
  };
  for (const i of [0, 1, 2]) await pick(Ana, i);
  for (const i of [1, 2]) await pick(Ben, i);
  for (const i of [1, 3]) await pick(Cy, i);

  await showView(board, "picks");
  await poll("the picked notes, most picked first", () => pickedOrder(board), (v) => v.length === 4 && v[0][1] === 3 && v[1][1] === 2);
  assert.deepEqual(await pickedOrder(board), [
    [body(1), 3],
    [body(2), 2],
    [body(0), 1],
    [body(3), 1],
  ]);
  assert.equal(await board.locator(sel("picked-note")).filter({ hasText: body(4) }).count(), 0, "a note nobody picked is not shown");
  assert.equal(await text(board.locator(sel("picks-totals"))), "7 picks from 3 people");
  assert.equal(await text(board.locator(sel("pick-count")).first()), "3 picks");
  assert.equal(await text(board.locator(sel("pick-limit"))), "7");
  const sizes = await board.locator(`${sel("picked-note")} ${sel("note-body")}`).evaluateAll((els) => els.map((el) => parseFloat(getComputedStyle(el).fontSize)));
  assert.ok(sizes.every((s) => s >= 24), `note text sizes ${sizes}`);
  await audit(board, "picks view (1920x1080)");
  await dismissUndo(board);
  await board.screenshot({ path: path.join(shots, "board-picks.png") });

  // The facilitator lowers the limit to 2: Ana's third pick stops counting, live; then back to 3.
  const firstCard = board.locator(sel("picked-note")).first();
  await firstCard.evaluate((el) => (el.dataset.marker = "kept"));
  for (let n = 6; n >= 2; n -= 1) {
    await board.locator(sel("pick-limit-down")).click();
    await poll(`the pick limit ${n}`, () => text(board.locator(sel("pick-limit"))), (v) => v === String(n));
  }
  await poll("Ana's third pick no longer counting", () => pickedOrder(board), (v) => v.length === 4 && v[1][1] === 1);
  assert.deepEqual(await pickedOrder(board), [
    [body(1), 3],
    [body(0), 1],
    [body(2), 1],
    [body(3), 1],
  ]);
  assert.equal(await text(board.locator(sel("picks-totals"))), "6 picks from 3 people");
  assert.equal(await firstCard.getAttribute("data-marker"), "kept", "the most picked card stays the same element");
  await board.locator(sel("pick-limit-up")).click();
  await poll("Ana's third pick counting again", () => pickedOrder(board), (v) => v.length === 4 && v[1][1] === 2);

  // A cluster from two picked notes.
  const cardOf = (i) => board.locator(sel("picked-note")).filter({ hasText: body(i) });
  await cardOf(1).locator(sel("pick-select")).click();
  await cardOf(2).locator(sel("pick-select")).click();
  assert.equal(await cardOf(1).locator(sel("pick-select")).getAttribute("aria-pressed"), "true");
  assert.equal(await text(board.locator(sel("picks-selected"))), "2 notes selected");
  await board.fill(sel("picks-cluster-name"), "Making 10 first");
  await board.locator(sel("picks-cluster-make")).click();
  await poll("the selection cleared", () => text(board.locator(sel("picks-selected"))), (v) => v.startsWith("Select picked notes"));
  assert.equal(await board.locator(sel("picks-cluster-name")).inputValue(), "");
  for (const i of [1, 2]) {
    await poll("the cluster named on the picked cards", () => cardOf(i).locator(sel("board-note-cluster")).textContent(), (v) => v === "Making 10 first");
  }
  assert.equal(await cardOf(0).locator(sel("board-note-cluster")).isVisible(), false, "a note not selected is in no cluster");
  await showView(board, "clusters");
  const cluster = board.locator(sel("cluster")).filter({ hasText: "Making 10 first" });
  await waitCount(cluster, 1, "the new cluster");
  assert.equal(await cluster.getAttribute("data-count"), "2");
  assert.deepEqual((await cluster.locator(sel("note-body")).allTextContents()).map((s) => s.trim()).sort(), [body(1), body(2)].sort());

  // Final debrief: next steps from two coaches, written on their phones.
  await goTo("final-debrief");
  const steps = {
    Ben: ["Try a quick look at a ten-frame with my second-grade team on Tuesday"],
    Ana: ["Share the 8 + 5 video clip at our PLC", "Co-teach a number talk with Ms. Diaz and wait 10 seconds"],
  };
  const nextStep = async (page, value) => {
    await waitVisible(page.locator(sel("next-step-text")), true, "the next-step box");
    await page.fill(sel("next-step-text"), value);
    await page.locator(sel("next-step-add")).tap();
    await poll(`"${value}" on the phone`, () => page.locator(sel("next-step-item")).filter({ hasText: value }).count(), (n) => n === 1);
  };
  await nextStep(Ben, steps.Ben[0]);
  await nextStep(Ana, steps.Ana[0]);
  await nextStep(Ana, steps.Ana[1]);
  await showView(board, "nextsteps");
  const coaches = board.locator(sel("nextsteps-coach"));
  await poll("two coaches' next steps", () => board.locator(sel("nextsteps-step")).count(), (c) => c === 3);
  const shown = await coaches.evaluateAll((els) =>
    els.map((el) => [el.querySelector("[data-testid=nextsteps-name]").textContent, [...el.querySelectorAll("[data-testid=nextsteps-step]")].map((li) => li.textContent)]),
  );
  assert.deepEqual(shown, [
    ["Ana", steps.Ana],
    ["Ben", steps.Ben],
  ]);
  assert.equal(await text(board.locator(sel("nextsteps-total"))), "3 next steps from 2 coaches");
  await audit(board, "next steps view (1920x1080)");
  await dismissUndo(board);
  await board.screenshot({ path: path.join(shots, "board-nextsteps.png") });

  // A tablet at the table (an observer, touch): the same views, none of the facilitator's tools.
  const tablet = await (await browser.newContext(TABLET, "tablet")).newPage();
  await joinByCode(tablet, origin, lab.joinCode, "Dee");
  await open(tablet, `${origin}/lab/${lab.labId}/board`);
  await showView(tablet, "picks", { touch: true });
  await poll("the tablet's picked notes", () => pickedOrder(tablet), (v) => v.length === 4);
  assert.deepEqual(await pickedOrder(tablet), await pickedOrder(board));
  assert.equal(await tablet.locator(sel("pick-select")).first().isVisible(), false, "an observer selects nothing");
  assert.equal(await tablet.locator(sel("pick-limit-down")).isVisible(), false, "an observer does not set the limit");
  assert.equal(await tablet.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, "no sideways scroll on the tablet");
  await audit(tablet, "picks view (tablet 1180x820)");
  await tablet.screenshot({ path: path.join(shots, "board-picks-tablet.png") });
  await showView(tablet, "nextsteps", { touch: true });
  await poll("the tablet's next steps", () => tablet.locator(sel("nextsteps-step")).count(), (c) => c === 3);
  await audit(tablet, "next steps view (tablet 1180x820)");

  checkBrowserLog(t, browser);
});
