// Scenario: the lab routine. The facilitator advances the phases on the projector board (plan,
// then lesson 1); a phone calls a teacher time-out (two taps) and the other phone and the board show its
// banner and running timer; notes posted during it carry its marker on the board; the caller
// ends it; the facilitator records one from the board and ends it; two phones say "I saw that
// too" about a third phone's note at the same moment and both see 2 (its author cannot react);
// the board's timeline shows the lesson minute by minute with the time-outs marked; an author
// edits and deletes their own note, which nobody else can; the phase survives a reload; debrief 1
// has no time-out button, and the facilitator can pick lesson 2 directly in the phase bar.
//
// Needs a server that creates boards with schema v2 (phases, timeouts): on a server that still
// creates v1 boards the test is skipped, since the client never creates those maps itself.
//
// Screenshots go to a temp dir (removed afterwards) unless LABBOARD_SCREENSHOT_DIR names one
// (relative to the repo root): lab-phone-lesson.png, lab-phone-timeout.png, lab-board-timeout.png, lab-timeline.png.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { TEST_TIMEOUT, audit, boardNote, checkBrowserLog, feedNote, poll, postNote, sel, waitAttr, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhones, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";
import { callTimeout } from "./phone.mjs";

test("phases, a teacher time-out and reactions, on the phones and the board", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(
    t,
    { title: "Making ten: lab run", school: "Hillside", grade: "2" },
    { colorScheme: "light" },
  );
  const shots = screenshotDir(t);

  // A v1 server makes boards without phases: nothing of this scenario can run there.
  const v1 = "this labboard creates schema v1 boards (no `phases` map): the server's schema v2 upgrade has not landed";
  if (!(await boardHasPhases(t, board, v1))) return;

  // The five default phases, in order; none is current yet.
  const phaseIds = await board.locator(sel("phase-item")).evaluateAll((els) => els.map((el) => el.dataset.phase));
  assert.deepEqual(phaseIds, ["plan", "lesson-1", "debrief-1", "lesson-2", "final-debrief"]);
  assert.equal(await board.locator(`${sel("phase-item")}[aria-current]`).count(), 0, "no current phase before the start");

  const phones = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben", "Cy"]);
  const { Ana, Ben, Cy } = phones;
  assert.equal(await Ana.locator(sel("timeout-call")).isVisible(), false, "no time-out button before a lesson");

  // The facilitator starts the plan, then lesson 1.
  const next = board.locator(sel("phase-next"));
  assert.equal(await text(next), "Start Plan");
  await next.click();
  await waitAttr(board, "phase-bar", "data-current", "plan");
  await waitAttr(Ana, "phase-current", "data-phase", "plan");
  assert.equal(await Ana.locator(sel("timeout-call")).isVisible(), false, "no time-out button while planning");
  assert.equal(await text(next), "Start Lesson 1");
  await next.click();
  await waitAttr(board, "phase-bar", "data-current", "lesson-1");
  assert.equal(await board.locator(`${sel("phase-item")}[aria-current="step"]`).getAttribute("data-phase"), "lesson-1");
  for (const page of [Ana, Ben]) {
    await waitAttr(page, "phase-current", "data-phase", "lesson-1");
    assert.match(await text(page.locator(sel("phase-current"))), /Lesson 1/);
    await waitVisible(page.locator(sel("timeout-call")), true, "the time-out button");
  }
  await waitVisible(board.locator(sel("timeout-call")), true, "the board's time-out button");

  // A note before the time-out.
  const before = "T. counted on from 8: 9, 10, 11, 12, 13";
  await postNote(Ben, "student-thinking", before);

  await Ana.evaluate(() => window.scrollTo(0, 0));
  await Ana.screenshot({ path: path.join(shots, "lab-phone-lesson.png") });

  // Ana calls a time-out (two taps); Ben's phone and the board show who called it, with a
  // running timer.
  await callTimeout(Ana);
  for (const page of [Ana, Ben, board]) {
    await waitVisible(page.locator(sel("timeout-banner")), true, "the time-out banner");
    await poll("the timer", () => text(page.locator(sel("timeout-timer"))), (v) => /^\d\d:\d\d$/.test(v));
  }
  assert.match(await text(Ben.locator(sel("timeout-caller"))), /Ana/, "Ben sees who called it");
  assert.match(await text(board.locator(sel("timeout-caller"))), /Ana/, "the board shows who called it");
  await waitVisible(Ben.locator(sel("timeout-call")), false, "Ben's time-out button during the time-out");
  assert.equal(await Ben.locator(sel("timeout-end")).isVisible(), false, "only the caller or a facilitator may end it");
  assert.equal(await Ana.locator(sel("timeout-end")).isVisible(), true, "the caller may end it");
  assert.equal(await board.locator(sel("timeout-end")).isVisible(), true, "the facilitator may end it");
  const timeoutId = await Ben.locator(sel("timeout-banner")).getAttribute("data-timeout-id");
  assert.ok(timeoutId, "the banner names its time-out");
  // The timer runs.
  const first = await text(Ben.locator(sel("timeout-timer")));
  await poll("the timer to move on", () => text(Ben.locator(sel("timeout-timer"))), (v) => v !== first, 5_000);

  await Ana.locator(sel("timeout-banner")).scrollIntoViewIfNeeded();
  await Ben.screenshot({ path: path.join(shots, "lab-phone-timeout.png") });

  // Notes posted during the time-out carry its marker, on the phones and on the board.
  const during = ["R. says 8 + 5 is 13 because 8 needs 2 more to make 10", "Teacher asked the group: what did we just see?"];
  await postNote(Ben, "strategies", during[0]);
  await postNote(Ana, "teacher-moves", during[1]);
  await waitCount(boardNote(board, "strategies", during[0]), 1, "the first time-out note on the board");
  await waitCount(boardNote(board, "teacher-moves", during[1]), 1, "the second time-out note on the board");
  for (const [category, body] of [["strategies", during[0]], ["teacher-moves", during[1]]]) {
    const marker = boardNote(board, category, body).locator(sel("board-note-timeout"));
    await waitVisible(marker, true, `the time-out marker of "${body}" on the board`);
    assert.equal(await marker.getAttribute("data-timeout-id"), timeoutId);
    await waitVisible(feedNote(Ana, body).locator(sel("note-timeout-marker")), true, `the marker of "${body}" in Ana's feed`);
  }
  assert.equal(await boardNote(board, "student-thinking", before).locator(sel("board-note-timeout")).isVisible(), false);
  await board.screenshot({ path: path.join(shots, "lab-board-timeout.png") });

  // The caller ends it: the banner goes everywhere, the button comes back.
  await Ana.locator(sel("timeout-end")).tap();
  for (const page of [Ana, Ben, board]) await waitVisible(page.locator(sel("timeout-banner")), false, "the time-out banner");
  await waitVisible(Ben.locator(sel("timeout-call")), true, "Ben's time-out button after the time-out");
  const after = "J. drew two ten-frames and filled the first one";
  await postNote(Ana, "strategies", after);
  await waitCount(boardNote(board, "strategies", after), 1, "the note after the time-out on the board");
  assert.equal(await boardNote(board, "strategies", after).locator(sel("board-note-timeout")).isVisible(), false, "no marker after it ended");

  // Ana and Ben both say "I saw that too" about Cy's note, at the same moment; Cy cannot react
  // to her own note.
  const seen = "C. made 13 with a full ten-frame and 3 more";
  await postNote(Cy, "strategies", seen);
  assert.equal(await feedNote(Cy, seen).locator(sel("note-react")).isVisible(), false, "no reaction to one's own note");
  const react = (page) => feedNote(page, seen).locator(sel("note-react"));
  const count = (page) => feedNote(page, seen).locator(sel("note-react-count"));
  await waitCount(feedNote(Ana, seen), 1, "Cy's note on Ana's phone");
  await waitCount(feedNote(Ben, seen), 1, "Cy's note on Ben's phone");
  await Promise.all([react(Ana).tap(), react(Ben).tap()]);
  for (const page of [Ana, Ben]) {
    await poll("the reaction count 2", () => text(count(page)), (v) => v === "2");
    assert.equal(await react(page).getAttribute("aria-pressed"), "true");
  }
  await poll("Cy sees that two saw it too", () => text(feedNote(Cy, seen).locator(sel("note-seen"))), (v) => v === "2 saw it too");
  const boardReactions = boardNote(board, "strategies", seen).locator(sel("board-note-reactions"));
  await poll("the board's reaction count 2", () => boardReactions.getAttribute("data-count"), (v) => v === "2");
  // A second tap takes one's own back.
  await react(Ben).tap();
  await poll("Ana sees the count drop to 1", () => text(count(Ana)), (v) => v === "1");
  assert.equal(await react(Ben).getAttribute("aria-pressed"), "false");

  // The facilitator records a time-out from the board, and ends it there.
  await board.locator(sel("timeout-call")).click();
  await waitVisible(Ana.locator(sel("timeout-banner")), true, "Ana's banner for the facilitator's time-out");
  assert.equal(await Ana.locator(sel("timeout-end")).isVisible(), false, "Ana did not call this one");
  await waitVisible(board.locator(sel("timeout-call")), false, "the board's time-out button during a time-out");
  await board.locator(sel("timeout-end")).click();
  await waitVisible(Ana.locator(sel("timeout-banner")), false, "Ana's banner after the board ended it");

  // An author edits and deletes their own notes; nobody else gets the buttons.
  assert.equal(await feedNote(Ana, before).locator(sel("note-edit")).isVisible(), false, "Ana cannot edit Ben's note");
  assert.equal(await feedNote(Ana, before).locator(sel("note-delete")).isVisible(), false, "Ana cannot delete Ben's note");
  const edited = "T. counted on from 8 using fingers: 9, 10, 11, 12, 13";
  const mine = feedNote(Ben, before);
  await mine.locator(sel("note-edit")).tap();
  await mine.locator(sel("note-edit-text")).fill(edited);
  await mine.locator(sel("note-edit-save")).tap();
  await waitCount(feedNote(Ana, edited), 1, "the edited note in Ana's feed");
  await waitCount(boardNote(board, "student-thinking", edited), 1, "the edited note on the board");
  await waitCount(boardNote(board, "student-thinking", before), 0, "the old text on the board");
  const del = feedNote(Ben, edited).locator(sel("note-delete"));
  await del.tap();
  await del.tap(); // the second tap confirms
  // Gone from Ben's feed at once, with an undo toast; nobody else is told until it goes.
  await waitCount(feedNote(Ben, edited), 0, "the deleted note in Ben's feed");
  await waitVisible(Ben.locator(sel("undo-toast")), true, "Ben's undo toast");
  assert.equal(await text(Ben.locator(sel("undo-message"))), "Note deleted");
  await audit(Ben, "phone with the undo toast");
  await Ben.screenshot({ path: path.join(shots, "phone-undo.png") });
  await Ben.locator(sel("undo-button")).tap();
  await waitCount(feedNote(Ben, edited), 1, "the note back in Ben's feed after Undo");
  await waitVisible(Ben.locator(sel("undo-toast")), false, "the toast after Undo");
  // Undone means never deleted: the note, and Ana's view of it, were never touched.
  assert.equal(await feedNote(Ana, edited).count(), 1, "the note stayed in Ana's feed");
  assert.equal(await boardNote(board, "student-thinking", edited).count(), 1, "the note stayed on the board");
  // Deleted again, and this time the toast goes (dismissed): now it is deleted everywhere.
  await feedNote(Ben, edited).locator(sel("note-delete")).tap();
  await feedNote(Ben, edited).locator(sel("note-delete")).tap();
  await waitVisible(Ben.locator(sel("undo-toast")), true, "Ben's undo toast again");
  await Ben.locator(sel("undo-dismiss")).tap();
  await waitCount(boardNote(board, "student-thinking", edited), 0, "the deleted note on the board");
  await waitCount(feedNote(Ana, edited), 0, "the deleted note in Ana's feed");
  await waitCount(feedNote(Ben, edited), 0, "the deleted note in Ben's feed after the toast");

  // The timeline: lesson 1 minute by minute, the time-out marked; then back to the columns.
  await board.locator(`${sel("view-toggle")}[data-view="timeline"]`).click();
  await waitVisible(board.locator(sel("timeline")), true, "the timeline");
  assert.equal(await board.locator(sel("timeline")).getAttribute("data-phase"), "lesson-1");
  await waitCount(board.locator(sel("timeline-note")), 4, "lesson 1's notes on the timeline");
  await waitCount(board.locator(sel("timeline-timeout")), 2, "the two time-outs on the timeline");
  assert.ok((await board.locator(sel("timeline-minute")).count()) >= 1, "at least one minute row");
  assert.equal(await board.locator(sel("board-column")).first().isVisible(), false, "columns hidden in the timeline view");
  await board.screenshot({ path: path.join(shots, "lab-timeline.png") });
  await board.locator(`${sel("view-toggle")}[data-view="columns"]`).click();
  await waitVisible(board.locator(sel("board-column")).first(), true, "the columns");
  await waitCount(board.locator(sel("board-note")), 4, "notes on the board");

  // The phase survives a reload of the board.
  await board.reload();
  await board.waitForSelector("body[data-ready='1']", { state: "attached" });
  await waitAttr(board, "phase-bar", "data-current", "lesson-1");

  // Debrief 1: no time-outs there. Then the facilitator picks lesson 2 in the phase bar.
  assert.equal(await text(next), "Start Debrief 1");
  await next.click();
  await waitAttr(Ana, "phase-current", "data-phase", "debrief-1");
  await waitVisible(Ana.locator(sel("timeout-call")), false, "the time-out button in a debrief");
  await waitVisible(board.locator(sel("timeout-call")), false, "the board's time-out button in a debrief");
  await board.locator(`${sel("phase-item")}[data-phase="lesson-2"]`).click();
  await waitAttr(board, "phase-bar", "data-current", "lesson-2");
  await waitAttr(Ben, "phase-current", "data-phase", "lesson-2");
  await waitVisible(Ben.locator(sel("timeout-call")), true, "the time-out button in lesson 2");
  // No agreements were written in debrief 1, so there is nothing to carry over.
  assert.equal(await Ben.locator(sel("agreements-carried")).isVisible(), false);

  checkBrowserLog(t, browser);
});
