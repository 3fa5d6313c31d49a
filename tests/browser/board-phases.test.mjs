// Phases on the projector board (issue #12, defects 5, 6 and 9): going back a phase asks first,
// and any phase change can be undone (the phones follow both ways); the board never mixes
// lessons silently: every card says its phase, a phase filter shows one lesson or all, and the
// timeline shows Lesson 1 beside Lesson 2; during Lesson 2 the projector shows what Debrief 1
// agreed to try. axe on each state, light and dark.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { PROJECTOR, TEST_TIMEOUT, audit, boardNote, checkBrowserLog, postNote, sel, waitAttr, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhones, screenshotDir, text, waitVisible } from "./scenario.mjs";
import { boardAt, startPhase, undoToast } from "./board-helpers.mjs";

const L1 = ["T. counted on from 8: 9, 10, 11, 12, 13", "R. made a ten with 8 + 2, then added 3"];
const L2 = ["T. made a ten first this time: 8 + 2 + 3", "Two tables used ten-frames without being asked"];

for (const scheme of ["light", "dark"]) {
  test(`phases (${scheme}): back asks first, changes undo, lessons never mix, debrief 1's agreements in lesson 2`, { timeout: TEST_TIMEOUT * 2 }, async (t) => {
    const { browser, origin, board, lab } = await boardAt(t, PROJECTOR, { title: `Two visits (${scheme})`, school: "Hillside", grade: "2" }, scheme);
    const shots = screenshotDir(t);
    if (!(await boardHasPhases(t, board))) return;
    const { Ana } = await joinPhones(browser, origin, lab.joinCode, ["Ana"], () => scheme);
    const current = () => board.locator(sel("phase-bar")).getAttribute("data-current");

    // Lesson 1, then Debrief 1 with an agreement.
    await startPhase(board, "lesson-1");
    await postNote(Ana, "student-thinking", L1[0]);
    await postNote(Ana, "strategies", L1[1]);
    await startPhase(board, "debrief-1");
    await board.fill(sel("agreement-new-text"), "Open with a number talk on making ten");
    await board.fill(sel("agreement-new-owner"), "Kim");
    await board.locator(sel("agreement-add")).click();
    await waitCount(board.locator(sel("agreement-item")), 1, "the agreement");

    // Forward to Lesson 2 asks nothing; its toast undoes it (the phone goes back too).
    await board.locator(`${sel("phase-item")}[data-phase="lesson-2"]`).click();
    assert.equal(await board.locator(sel("phase-confirm")).isVisible(), false, "no question going forward");
    await waitAttr(board, "phase-bar", "data-current", "lesson-2");
    await waitAttr(Ana, "phase-current", "data-phase", "lesson-2");
    const toast = await undoToast(board);
    assert.match(await text(toast.locator(sel("undo-message"))), /Lesson 2 started \(was Debrief 1\)/);
    await toast.locator(sel("undo-button")).click();
    await waitAttr(board, "phase-bar", "data-current", "debrief-1");
    await waitAttr(Ana, "phase-current", "data-phase", "debrief-1");
    assert.equal(await board.locator(`${sel("phase-item")}[data-phase="lesson-2"]`).evaluate((el) => el.classList.contains("is-done")), false, "Lesson 2 as if never started");
    await startPhase(board, "lesson-2");
    await waitAttr(Ana, "phase-current", "data-phase", "lesson-2");

    // Lesson 2: the projector shows what Debrief 1 agreed.
    const band = board.locator(sel("agreements-carried-board"));
    await waitVisible(band, true, "Debrief 1's agreements in Lesson 2");
    assert.match(await text(band), /Debrief 1 agreed to try/);
    assert.match(await text(band.locator(sel("carried-agreement"))), /Open with a number talk on making ten.*Kim/);
    await postNote(Ana, "student-thinking", L2[0]);
    await postNote(Ana, "strategies", L2[1]);
    await waitCount(board.locator(sel("board-note")), 4, "four notes");

    // Every card names its phase.
    for (const body of L1) assert.equal(await text(boardNote(board, body === L1[0] ? "student-thinking" : "strategies", body).locator(sel("note-phase"))), "Lesson 1");
    for (const body of L2) assert.equal(await text(boardNote(board, body === L2[0] ? "student-thinking" : "strategies", body).locator(sel("note-phase"))), "Lesson 2");
    await audit(board, `board lesson 2 with debrief 1's agreements (${scheme})`);
    await board.screenshot({ path: path.join(shots, `board-lesson2-${scheme}.png`) });

    // The phase filter: one lesson at a time, or all.
    const bodies = () => board.locator(`${sel("board-note")} ${sel("note-body")}`).allTextContents();
    const filterTo = async (phase, n) => {
      await board.locator(`${sel("phase-filter")}[data-phase="${phase}"]`).click();
      await waitCount(board.locator(sel("board-note")), n, `notes shown for "${phase || "all"}"`);
      assert.equal(await board.locator(`${sel("phase-filter")}[data-phase="${phase}"]`).getAttribute("aria-pressed"), "true");
    };
    await filterTo("lesson-1", 2);
    assert.deepEqual((await bodies()).map((b) => b.trim()).sort(), [...L1].sort());
    await filterTo("lesson-2", 2);
    assert.deepEqual((await bodies()).map((b) => b.trim()).sort(), [...L2].sort());
    await filterTo("", 4);

    // The timeline with all phases: Lesson 1 beside Lesson 2.
    await board.locator(`${sel("view-toggle")}[data-view="timeline"]`).click();
    await waitCount(board.locator(sel("timeline-phase")), 2, "two phases on the timeline");
    assert.deepEqual(await board.locator(sel("timeline-phase")).evaluateAll((els) => els.map((el) => el.dataset.phase)), ["lesson-1", "lesson-2"]);
    const [a, b] = await board.locator(sel("timeline-phase")).evaluateAll((els) => els.map((el) => el.getBoundingClientRect().toJSON()));
    assert.ok(b.left >= a.right - 1 && Math.abs(a.top - b.top) < 2, "side by side");
    await audit(board, `board timeline of two lessons (${scheme})`);
    await board.screenshot({ path: path.join(shots, `board-timeline-two-lessons-${scheme}.png`) });
    await board.locator(`${sel("phase-filter")}[data-phase="lesson-2"]`).click();
    await waitCount(board.locator(sel("timeline-phase")), 1, "one phase on the timeline");
    await waitCount(board.locator(sel("timeline-note")), 2, "Lesson 2's notes on its timeline");
    await board.locator(`${sel("phase-filter")}[data-phase=""]`).click();
    await board.locator(`${sel("view-toggle")}[data-view="columns"]`).click();

    // Back to Plan: a question first; "Stay" changes nothing.
    await board.locator(`${sel("phase-item")}[data-phase="plan"]`).click();
    const dialog = board.locator(sel("phase-confirm"));
    await waitVisible(dialog, true, "the question before going back");
    assert.match(await text(dialog), /Go back to Plan\?/);
    assert.equal(await board.evaluate(() => document.activeElement?.dataset.testid), "phase-confirm-stay", "the safe answer has the focus");
    await audit(board, `board asking before going back (${scheme})`);
    await board.locator(sel("phase-confirm-stay")).click();
    await waitVisible(dialog, false, "the question after Stay");
    assert.equal(await current(), "lesson-2");
    // Escape is "stay" too.
    await board.locator(`${sel("phase-item")}[data-phase="lesson-1"]`).click();
    await waitVisible(dialog, true, "the question again");
    await board.keyboard.press("Escape");
    await waitVisible(dialog, false, "the question after Escape");
    assert.equal(await current(), "lesson-2");
    await waitAttr(Ana, "phase-current", "data-phase", "lesson-2");

    // "Go back" moves everyone; Undo brings everyone back to Lesson 2.
    await board.locator(`${sel("phase-item")}[data-phase="plan"]`).click();
    await board.locator(sel("phase-confirm-go")).click();
    await waitAttr(board, "phase-bar", "data-current", "plan");
    await waitAttr(Ana, "phase-current", "data-phase", "plan");
    await (await undoToast(board)).locator(sel("undo-button")).click();
    await waitAttr(board, "phase-bar", "data-current", "lesson-2");
    await waitAttr(Ana, "phase-current", "data-phase", "lesson-2");
    checkBrowserLog(t, browser);
  });
}
