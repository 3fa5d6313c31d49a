// The facilitator's note tools on the board (issue #12, defect 4): visible when they can be used
// (one "⋯" button per card, a fingertip wide on a touch screen), never an invisible hit target,
// no blank strip on a projector card; a tap on a card's blank area does nothing; hide, unpin,
// take out of a cluster and remove a cluster can be undone from the undo toast (by touch, by
// Ctrl+Z), and undo restores exactly what was changed, on the phones too.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { PROJECTOR, TABLET, TEST_TIMEOUT, audit, boardNote, checkBrowserLog, feedNote, poll, postNote, sel, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhones, screenshotDir, text, waitVisible } from "./scenario.mjs";
import { boardAt, menuOf, noteAction, openNoteMenu, startPhase, undoToast } from "./board-helpers.mjs";

const FIRST = "T. counted on from 8: 9, 10, 11, 12, 13";
const SECOND = "R. made a ten with 8 + 2, then added 3";

/** Buttons and menus of a card that take pointer events while they cannot be seen. */
const invisibleTargets = (card) =>
  card.evaluate((el) =>
    [...el.querySelectorAll("button, select, [role=button]")]
      .filter((b) => {
        const r = b.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return false;
        const s = getComputedStyle(b);
        const hidden = s.visibility === "hidden" || Number(s.opacity) < 0.5 || [...(function* up(n) { for (let p = n.parentElement; p && p !== el.parentElement; p = p.parentElement) yield p; })(b)].some((p) => Number(getComputedStyle(p).opacity) < 0.5);
        return hidden && s.pointerEvents !== "none";
      })
      .map((b) => b.dataset.testid || b.className),
  );

test("tablet (touch): the ⋯ menu is visible and a fingertip wide; a blank tap does nothing; hide and unpin undo", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await boardAt(t, TABLET, { title: "Tools by touch", school: "Hillside", grade: "2" });
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board))) return;
  const { Ana } = await joinPhones(browser, origin, lab.joinCode, ["Ana"]);
  await startPhase(board, "lesson-1");
  await postNote(Ana, "student-thinking", FIRST);
  await postNote(Ana, "strategies", SECOND);
  await startPhase(board, "debrief-1");
  const first = boardNote(board, "student-thinking", FIRST);
  await waitCount(first, 1, "the first note on the board");

  // The one tool handle: visible, with a name, at least 44 px by touch, nothing invisible.
  const handle = first.locator(sel("note-tools-open"));
  assert.equal(await handle.isVisible(), true, "the ⋯ button is visible");
  const box = await handle.boundingBox();
  assert.ok(box.width >= 44 && box.height >= 44, `the ⋯ button is a fingertip (${box.width}x${box.height})`);
  assert.match(await handle.getAttribute("aria-label"), /Actions for the note/);
  assert.deepEqual(await invisibleTargets(first), [], "no invisible hit target on a card");

  // A tap on the card's blank area (its top left corner, and the space right of the text) does nothing.
  const card = await first.boundingBox();
  await board.touchscreen.tap(card.x + 4, card.y + 4);
  await board.touchscreen.tap(card.x + card.width - 6, card.y + card.height / 2);
  assert.equal(await board.locator(sel("focus-overlay")).isVisible(), false, "no focus from a blank tap");
  assert.equal(await first.getAttribute("data-hidden"), "false", "not hidden by a blank tap");
  assert.equal(await (await menuOf(first)).isVisible(), false, "no menu from a blank tap");

  // The menu by touch: its buttons are a fingertip high, and axe is happy with it open.
  await handle.tap();
  const menu = await menuOf(first);
  await waitVisible(menu, true, "the note's menu");
  for (const id of ["note-pin", "note-highlight", "note-hide", "note-focus"]) {
    const b = await menu.locator(sel(id)).boundingBox();
    assert.ok(b && b.height >= 44, `${id} is 44 px high (${b?.height})`);
  }
  await audit(board, "board tablet with a note's menu open");
  await board.screenshot({ path: path.join(shots, "board-tools-menu-tablet.png") });
  // A tap outside closes it.
  await board.touchscreen.tap(5, 400);
  await waitVisible(menu, false, "the menu after a tap outside");

  // Hide: gone from the board and the phone; the toast's Undo (by touch) brings it back.
  await handle.tap();
  await menu.locator(sel("note-hide")).tap();
  await waitCount(first, 0, "the hidden note on the board");
  await waitCount(feedNote(Ana, FIRST), 0, "the hidden note on the phone");
  const toast = await undoToast(board);
  assert.equal(await toast.getAttribute("role"), "status");
  assert.match(await text(toast.locator(sel("undo-message"))), /Hidden from every phone/);
  const undo = toast.locator(sel("undo-button"));
  const ub = await undo.boundingBox();
  assert.ok(ub.height >= 44 && ub.width >= 44, "Undo is a fingertip");
  await audit(board, "board tablet with the undo toast");
  await undo.tap();
  await waitCount(first, 1, "the note back on the board");
  assert.equal(await first.getAttribute("data-hidden"), "false");
  await waitCount(feedNote(Ana, FIRST), 1, "the note back on the phone");
  await waitVisible(toast, false, "the toast after Undo");

  // Pin, then unpin: Undo pins it again (and only that).
  await noteAction(first, "note-pin");
  await poll("pinned", () => first.getAttribute("data-pinned"), (v) => v === "true");
  assert.equal(await board.locator(sel("undo-toast")).isVisible(), false, "pinning offers no undo");
  await noteAction(first, "note-pin");
  await poll("unpinned", () => first.getAttribute("data-pinned"), (v) => v === "false");
  await (await undoToast(board)).locator(sel("undo-button")).tap();
  await poll("pinned again", () => first.getAttribute("data-pinned"), (v) => v === "true");
  assert.equal(await first.getAttribute("data-hidden"), "false");
  checkBrowserLog(t, browser);
});

test("projector: no blank strip on a card; Ctrl+Z undoes; taking a note out of a cluster and removing a cluster undo", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await boardAt(t, PROJECTOR, { title: "Tools on the projector", school: "Hillside", grade: "2" });
  if (!(await boardHasPhases(t, board))) return;
  const { Ana } = await joinPhones(browser, origin, lab.joinCode, ["Ana"]);
  await startPhase(board, "lesson-1");
  await postNote(Ana, "student-thinking", FIRST);
  await postNote(Ana, "strategies", SECOND);
  const first = boardNote(board, "student-thinking", FIRST);
  await waitCount(first, 1, "the note on the board");

  // No blank strip: the card ends right under its footer, in a lesson and in presenter mode.
  for (const phase of ["lesson-1", "debrief-1"]) {
    if (phase !== "lesson-1") await startPhase(board, phase);
    const gap = await first.evaluate((el) => el.getBoundingClientRect().bottom - el.querySelector(".board-note-foot").getBoundingClientRect().bottom);
    assert.ok(gap <= 16, `no blank strip under the footer in ${phase} (${gap}px)`);
    assert.deepEqual(await invisibleTargets(first), [], `no invisible hit target in ${phase}`);
  }

  // Keyed: a note arriving (the column re-sorts) neither rebuilds a card nor closes its open menu.
  await first.evaluate((el) => (el.kept = true));
  const menuOpen = await openNoteMenu(first);
  await postNote(Ana, "student-thinking", "J. wrote 8 + 5 = 12, then crossed it out");
  await waitCount(board.locator(`${sel("board-column")}[data-category="student-thinking"] ${sel("board-note")}`), 2, "two notes in the column");
  assert.equal(await first.evaluate((el) => el.kept === true), true, "the same card element after an update");
  assert.equal(await menuOpen.isVisible(), true, "its menu still open");
  await board.keyboard.press("Escape");
  await waitVisible(menuOpen, false, "the menu after Escape");
  assert.equal(await first.locator(sel("note-tools-open")).evaluate((el) => el === document.activeElement), true, "Escape gives the focus back to ⋯");

  // Ctrl+Z while the toast shows undoes the hide.
  await noteAction(first, "note-hide");
  await waitCount(first, 0, "the hidden note");
  await undoToast(board);
  await board.keyboard.press("Control+z");
  await waitCount(first, 1, "the note back after Ctrl+Z");
  await waitVisible(board.locator(sel("undo-toast")), false, "the toast after Ctrl+Z");

  // Clusters: move by the menu, take out, undo: back in its cluster.
  await board.locator(`${sel("view-toggle")}[data-view="clusters"]`).click();
  await board.fill(sel("cluster-new-label"), "Making ten");
  await board.locator(sel("cluster-add")).click();
  const cluster = board.locator(sel("cluster")).first();
  await cluster.waitFor();
  const inPool = (body) => board.locator(sel("cluster-pool")).locator(sel("cluster-note")).filter({ hasText: body });
  const inCluster = (body) => cluster.locator(sel("cluster-note")).filter({ hasText: body });
  const menu = await openNoteMenu(inPool(SECOND));
  await menu.locator(sel("note-move")).selectOption({ label: "Making ten" });
  await waitCount(inCluster(SECOND), 1, "the note in the cluster");
  // The card moved into the cluster is the same element (a drag or a finger never loses it).
  await inCluster(SECOND).evaluate((el) => (el.kept = true));
  await board.fill(sel("cluster-new-label"), "Counting on");
  await board.locator(sel("cluster-add")).click();
  await waitCount(board.locator(sel("cluster")), 2, "two clusters");
  assert.equal(await inCluster(SECOND).evaluate((el) => el.kept === true), true, "the same card after another cluster was added");
  await noteAction(inCluster(SECOND), "note-uncluster");
  await waitCount(inPool(SECOND), 1, "the note taken out");
  const toast = await undoToast(board);
  assert.match(await text(toast.locator(sel("undo-message"))), /Taken out of its cluster/);
  await audit(board, "board clusters 1920x1080 with the undo toast");
  await toast.locator(sel("undo-button")).click();
  await waitCount(inCluster(SECOND), 1, "the note back in its cluster");

  assert.equal(await inCluster(SECOND).evaluate((el) => el.kept === true), true, "the same card element back in its cluster");

  // Removing the cluster (one click) can be undone: the cluster and its note come back.
  await cluster.locator(sel("cluster-remove")).click();
  await waitCount(board.locator(sel("cluster")), 1, "one cluster left");
  assert.deepEqual(await board.locator(sel("cluster-label")).allTextContents(), ["Counting on"]);
  await waitCount(inPool(SECOND), 1, "the note loose again");
  await (await undoToast(board)).locator(sel("undo-button")).click();
  await waitCount(board.locator(sel("cluster")), 2, "the cluster back");
  assert.deepEqual(await board.locator(sel("cluster-label")).allTextContents(), ["Making ten", "Counting on"], "back in its place");
  await waitCount(inCluster(SECOND), 1, "its note back in it");
  checkBrowserLog(t, browser);
});
