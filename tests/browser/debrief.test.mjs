// Scenario: the debrief on the projector board. Phones post notes in lesson 1; in debrief 1 the
// facilitator writes agreements on the board (adds, edits the text and owner, removes one);
// pins, highlights and hides notes (a pinned note leads its column, a hidden one leaves the board
// and the phones' feeds and comes back, marked, with "show hidden"); shows one note full screen
// and closes it with Escape and with the button; names two clusters and groups notes into them
// (dragging one with the mouse, moving another with the menu, taking it out again); in lesson 2 every phone shows debrief 1's
// agreements.
//
// Needs a server that creates schema v2 boards (skipped otherwise, like lab-run.test.mjs).
// Screenshots go to a temp dir unless LABBOARD_SCREENSHOT_DIR names one (relative to the repo
// root): debrief-board.png, debrief-board-dark.png, debrief-focus.png, debrief-clusters.png,
// debrief-phone-lesson2.png.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { TEST_TIMEOUT, boardNote, checkBrowserLog, feedNote, poll, postNote, sel, waitAttr, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhones, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";
import { menuOf, moveNoteTo, noteAction, openNoteMenu } from "./board-helpers.mjs";

/** The note ids of a board column, top to bottom. */
const columnIds = (board, category) =>
  board.locator(`${sel("board-column")}[data-category="${category}"] ${sel("board-note")}`).evaluateAll((els) => els.map((el) => el.dataset.noteId));

test("agreements, pin, highlight, hide and focus in the debrief", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(
    t,
    { title: "Making ten: debrief", school: "Hillside", grade: "2" },
    { colorScheme: "light" },
  );
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board))) return;

  const phones = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben"]);
  const { Ana, Ben } = phones;

  // Lesson 1: three notes.
  await board.locator(`${sel("phase-item")}[data-phase="lesson-1"]`).click();
  await waitAttr(Ana, "phase-current", "data-phase", "lesson-1");
  const first = "T. counted on from 8: 9, 10, 11, 12, 13";
  const second = "R. made a ten with 8 + 2, then added 3";
  const third = "J. wrote 8 + 5 = 12, then crossed it out";
  const { id: firstId } = await postNote(Ana, "student-thinking", first);
  const { id: secondId } = await postNote(Ben, "strategies", second);
  const { id: thirdId } = await postNote(Ben, "student-thinking", third);
  for (const [category, body] of [["student-thinking", first], ["strategies", second], ["student-thinking", third]]) {
    await waitCount(boardNote(board, category, body), 1, `"${body}" on the board`);
  }
  assert.deepEqual(await columnIds(board, "student-thinking"), [thirdId, firstId], "newest first before pinning");

  // Debrief 1: the agreements panel opens by itself.
  await board.locator(`${sel("phase-item")}[data-phase="debrief-1"]`).click();
  await waitAttr(board, "phase-bar", "data-current", "debrief-1");
  const panel = board.locator(sel("agreements-panel"));
  await waitVisible(panel, true, "the agreements panel in debrief 1");
  assert.equal(await board.locator(sel("agreements-toggle")).getAttribute("aria-pressed"), "true");

  const addAgreement = async (body, owner) => {
    await board.fill(sel("agreement-new-text"), body);
    await board.fill(sel("agreement-new-owner"), owner);
    await board.locator(sel("agreement-add")).click();
    await waitCount(panel.locator(sel("agreement-item")).filter({ hasText: body }), 1, `the agreement "${body}"`);
  };
  await addAgreement("Open with a number talk on making ten", "Kim");
  await addAgreement("Give every table two ten-frames", "");
  await addAgreement("Something to take back", "Lee");
  assert.equal(await board.locator(sel("agreement-new-text")).inputValue(), "", "the box is emptied");
  const items = panel.locator(sel("agreement-item"));
  await waitCount(items, 3, "agreements");
  assert.equal(await text(items.nth(0).locator(sel("agreement-owner"))), "Kim");

  // Edit the second: new text and an owner.
  await items.nth(1).locator(sel("agreement-edit")).click();
  await board.fill(sel("agreement-edit-text"), "Give every table two ten-frames and counters");
  await board.fill(sel("agreement-edit-owner"), "Ana");
  await board.locator(sel("agreement-save")).click();
  await poll("the edited agreement", () => text(items.nth(1).locator(sel("agreement-text"))), (v) => v === "Give every table two ten-frames and counters");
  assert.equal(await text(items.nth(1).locator(sel("agreement-owner"))), "Ana");

  // Remove the third: the first click arms, the second removes.
  const remove = items.nth(2).locator(sel("agreement-remove"));
  await remove.click();
  assert.match(await text(remove), /again/);
  await remove.click();
  await waitCount(items, 2, "agreements after the removal");

  // Pin the older note of "student thinking": it leads its column.
  await noteAction(boardNote(board, "student-thinking", first), "note-pin");
  await poll("the pinned note first", () => columnIds(board, "student-thinking"), (ids) => ids[0] === firstId && ids[1] === thirdId);
  assert.equal(await boardNote(board, "student-thinking", first).getAttribute("data-pinned"), "true");

  // Highlight one.
  await noteAction(boardNote(board, "strategies", second), "note-highlight");
  await poll("the highlight", () => boardNote(board, "strategies", second).getAttribute("data-highlighted"), (v) => v === "true");
  // Its mark is a thick amber ring (the background is animated on a new note, so not that).
  const ring = (body, category) => boardNote(board, category, body).evaluate((el) => getComputedStyle(el).boxShadow);
  assert.match(await ring(second, "strategies"), /rgb\(245, 158, 11\)/, "a highlighted note has its ring");
  assert.doesNotMatch(await ring(third, "student-thinking"), /rgb\(245, 158, 11\)/, "a plain note has none");

  // Hide one: gone from the board and from the phones' feeds, still in the document.
  await noteAction(boardNote(board, "student-thinking", third), "note-hide");
  await waitCount(boardNote(board, "student-thinking", third), 0, "the hidden note on the board");
  for (const page of [Ana, Ben]) await waitCount(feedNote(page, third), 0, "the hidden note in a feed");
  assert.equal(await feedNote(Ana, first).count(), 1, "other notes stay in the feed");
  const showHidden = board.locator(sel("show-hidden"));
  await showHidden.click();
  await waitCount(boardNote(board, "student-thinking", third), 1, "the hidden note with show hidden");
  assert.equal(await boardNote(board, "student-thinking", third).getAttribute("data-hidden"), "true");
  assert.equal(await showHidden.getAttribute("aria-pressed"), "true");
  await openNoteMenu(boardNote(board, "student-thinking", first)); // the facilitator's tools, behind "⋯"
  await board.screenshot({ path: path.join(shots, "debrief-board.png") });
  await board.keyboard.press("Escape");
  await waitVisible(await menuOf(boardNote(board, "student-thinking", first)), false, "the note's menu after Escape");
  await showHidden.click();
  await waitCount(boardNote(board, "student-thinking", third), 0, "the hidden note after show hidden is off");

  await board.locator(sel("theme-toggle")).click();
  await waitAttr(board, "board-join-code", "data-testid", "board-join-code");
  await board.screenshot({ path: path.join(shots, "debrief-board-dark.png") });
  await board.locator(sel("theme-toggle")).click();

  // Focus on one note: full screen, large type; Escape closes, and so does the button.
  const overlay = board.locator(sel("focus-overlay"));
  await noteAction(boardNote(board, "strategies", second), "note-focus");
  await waitVisible(overlay, true, "the focused note");
  assert.equal(await text(board.locator(sel("focus-text"))), second);
  const size = await board.locator(sel("focus-text")).evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
  assert.ok(size >= 48, `large type (${size}px)`);
  await board.screenshot({ path: path.join(shots, "debrief-focus.png") });
  await board.keyboard.press("Escape");
  await waitVisible(overlay, false, "the focused note after Escape");
  await noteAction(boardNote(board, "strategies", second), "note-focus");
  await waitVisible(overlay, true, "the focused note again");
  await board.locator(sel("focus-close")).click();
  await waitVisible(overlay, false, "the focused note after its button");

  // Clusters: name two patterns, drag a note into one with the mouse, move another with the menu.
  await board.locator(`${sel("view-toggle")}[data-view="clusters"]`).click();
  await waitVisible(board.locator(sel("clusters-view")), true, "the clusters view");
  await waitVisible(board.locator(sel("board-column")).first(), false, "the columns in the clusters view");
  const pool = board.locator(sel("cluster-pool"));
  await waitCount(pool.locator(sel("cluster-note")), 2, "loose notes (the hidden one is not shown)");
  for (const label of ["Making ten", "Counting on"]) {
    await board.fill(sel("cluster-new-label"), label);
    await board.locator(sel("cluster-add")).click();
  }
  const clusters = board.locator(sel("cluster"));
  await waitCount(clusters, 2, "clusters");
  assert.deepEqual(await board.locator(sel("cluster-label")).allTextContents(), ["Making ten", "Counting on"]);
  const makingTen = clusters.filter({ has: board.locator(sel("cluster-label")).filter({ hasText: "Making ten" }) });
  const countingOn = clusters.filter({ has: board.locator(sel("cluster-label")).filter({ hasText: "Counting on" }) });
  await pool.locator(`${sel("cluster-note")}[data-note-id="${secondId}"]`).dragTo(makingTen);
  await waitCount(makingTen.locator(`${sel("cluster-note")}[data-note-id="${secondId}"]`), 1, "the dragged note in its cluster");
  assert.equal(await makingTen.getAttribute("data-count"), "1");
  await waitCount(pool.locator(sel("cluster-note")), 1, "loose notes after the drag");
  // The menu does the same without a mouse.
  await moveNoteTo(pool.locator(`${sel("cluster-note")}[data-note-id="${firstId}"]`), "Counting on");
  await waitCount(countingOn.locator(`${sel("cluster-note")}[data-note-id="${firstId}"]`), 1, "the moved note in its cluster");
  await waitCount(pool.locator(sel("cluster-note")), 0, "loose notes after the move");
  await board.screenshot({ path: path.join(shots, "debrief-clusters.png") });
  // Taking a note out puts it back with the loose ones.
  await noteAction(countingOn.locator(`${sel("cluster-note")}[data-note-id="${firstId}"]`), "note-uncluster");
  await waitCount(pool.locator(`${sel("cluster-note")}[data-note-id="${firstId}"]`), 1, "the note taken out");
  assert.equal(await countingOn.getAttribute("data-count"), "0");
  // The columns show each note's cluster.
  await board.locator(`${sel("view-toggle")}[data-view="columns"]`).click();
  await poll("the cluster tag in the columns", () => text(boardNote(board, "strategies", second).locator(sel("board-note-cluster"))), (v) => v === "Making ten");
  assert.equal(await boardNote(board, "student-thinking", first).locator(sel("board-note-cluster")).isVisible(), false);

  // Lesson 2: the phones show debrief 1's agreements.
  await board.locator(`${sel("phase-item")}[data-phase="lesson-2"]`).click();
  await waitVisible(panel, false, "the agreements panel in lesson 2");
  for (const page of [Ana, Ben]) {
    await waitAttr(page, "phase-current", "data-phase", "lesson-2");
    await waitVisible(page.locator(sel("agreements-carried")), true, "the carried agreements");
    await waitCount(page.locator(sel("agreement-item")), 2, "agreements on the phone");
    const shown = await page.locator(sel("agreement-item")).allTextContents();
    assert.match(shown[0], /Open with a number talk on making ten/);
    assert.match(shown[0], /Kim/);
    assert.match(shown[1], /Give every table two ten-frames and counters/);
  }
  await Ben.evaluate(() => window.scrollTo(0, 0));
  await Ben.screenshot({ path: path.join(shots, "debrief-phone-lesson2.png") });
  // The hidden note stays out of the feed after a reload.
  await Ana.reload();
  await Ana.waitForSelector("body[data-ready='1']", { state: "attached" });
  await waitCount(feedNote(Ana, first), 1, "a visible note after a reload");
  assert.equal(await feedNote(Ana, third).count(), 0, "the hidden note after a reload");

  checkBrowserLog(t, browser);
});

test("children: aliases shared between phones, notes tagged, the board filtered by child; category settings", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(
    t,
    { title: "Making ten: children", school: "Hillside", grade: "2" },
    { colorScheme: "light" },
  );
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board, "this labboard creates schema v1 boards (no `children` map)"))) return;
  const phones = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben"], (name) => (name === "Ben" ? "dark" : "light"));
  const { Ana, Ben } = phones;
  await board.locator(`${sel("phase-item")}[data-phase="lesson-1"]`).click();
  await waitAttr(Ana, "phase-current", "data-phase", "lesson-1");
  const chip = (page, alias) => page.locator(`${sel("child-chip")}[data-child="${alias}"]`);

  // Ana adds a child: a full name gets a warning and needs a second tap; she types initials.
  await Ana.locator(sel("child-add")).tap();
  await Ana.fill(sel("child-new"), "Maria Lopez");
  await waitVisible(Ana.locator(sel("child-warning")), true, "the full-name warning");
  await Ana.locator(sel("child-new-add")).tap();
  assert.equal(await text(Ana.locator(sel("child-new-add"))), "Add anyway");
  assert.equal(await chip(Ana, "Maria Lopez").count(), 0, "not added on the first tap");
  await Ana.fill(sel("child-new"), "T.");
  await waitVisible(Ana.locator(sel("child-warning")), false, "the warning for initials");
  await Ana.locator(sel("child-new-add")).tap();
  await waitCount(chip(Ana, "T."), 1, "Ana's chip T.");
  assert.equal(await chip(Ana, "T.").getAttribute("aria-pressed"), "true", "a new child is selected for the note");
  const aboutT = "T. counted on from 8: 9, 10, 11, 12, 13";
  await postNote(Ana, "student-thinking", aboutT);
  assert.equal(await text(feedNote(Ana, aboutT).locator(sel("note-children"))), "T.");
  assert.equal(await chip(Ana, "T.").getAttribute("aria-pressed"), "false", "chips are cleared after sending");

  // Ben's phone is offered T. without typing it; he adds R. and writes about R.
  await waitCount(chip(Ben, "T."), 1, "T. offered on Ben's phone");
  await Ben.locator(sel("child-add")).tap();
  await Ben.fill(sel("child-new"), "R.");
  await Ben.locator(sel("child-new-add")).tap();
  const aboutR = "R. made a ten with 8 + 2, then added 3";
  await postNote(Ben, "strategies", aboutR);
  const nobody = "The teacher asked the table to compare";
  await postNote(Ben, "teacher-moves", nobody);
  // Ana taps both chips for one note.
  await waitCount(chip(Ana, "R."), 1, "R. offered on Ana's phone");
  await chip(Ana, "R.").tap();
  await chip(Ana, "T.").tap();
  const aboutBoth = "R. and T. argued about 13 vs 12";
  await postNote(Ana, "wonderings", aboutBoth);
  await Ben.evaluate(() => window.scrollTo(0, 0));
  await chip(Ben, "T.").tap();
  await Ben.screenshot({ path: path.join(shots, "debrief-phone-children-dark.png") });
  await chip(Ben, "T.").tap();

  // The board: filter by T., then R., then everyone.
  await waitCount(board.locator(sel("board-note")), 4, "notes on the board");
  const shown = () => board.locator(`${sel("board-note")} ${sel("note-body")}`).allTextContents();
  await board.locator(sel("child-filter")).selectOption("T.");
  await poll("T.'s notes only", async () => (await shown()).map((s) => s.trim()).sort(), (v) => JSON.stringify(v) === JSON.stringify([aboutBoth, aboutT].sort()));
  await board.locator(sel("child-filter")).selectOption("R.");
  await poll("R.'s notes only", async () => (await shown()).map((s) => s.trim()).sort(), (v) => JSON.stringify(v) === JSON.stringify([aboutBoth, aboutR].sort()));
  await board.locator(sel("child-filter")).selectOption("");
  await waitCount(board.locator(sel("board-note")), 4, "every note without a filter");
  assert.equal(await text(boardNote(board, "wonderings", aboutBoth).locator(sel("board-note-children"))), "R., T.");

  // By child: one group per child, a note about two children in both.
  await board.locator(`${sel("view-toggle")}[data-view="children"]`).click();
  await waitVisible(board.locator(sel("children-view")), true, "the by-child view");
  const group = (alias) => board.locator(`${sel("child-group")}[data-child="${alias}"]`);
  await waitCount(group("T.").locator(sel("child-note")), 2, "T.'s notes");
  await waitCount(group("R.").locator(sel("child-note")), 2, "R.'s notes");
  assert.deepEqual(await board.locator(sel("child-group")).evaluateAll((els) => els.map((el) => el.dataset.child)), ["R.", "T."]);
  await board.screenshot({ path: path.join(shots, "debrief-by-child.png") });
  await board.locator(sel("child-filter")).selectOption("T.");
  await waitCount(board.locator(sel("child-group")), 1, "one group with a filter");
  await board.locator(sel("child-filter")).selectOption("");
  await board.locator(`${sel("view-toggle")}[data-view="columns"]`).click();

  // Category settings: rename, recolour and move "Next steps"; add a category.
  await board.locator(sel("categories-settings")).click();
  const settings = board.locator(sel("categories-panel"));
  await waitVisible(settings, true, "the category settings");
  const row = settings.locator(`${sel("category-row")}[data-category="next-steps"]`);
  await row.locator(sel("category-label")).fill("Try next time");
  await row.locator(sel("category-label")).press("Enter");
  await row.locator(sel("category-color")).fill("#be123c");
  await poll("the renamed column", () => text(board.locator(`${sel("board-column")}[data-category="next-steps"] .column-title`)), (v) => v === "Try next time");
  await poll(
    "the new colour",
    () => board.locator(`${sel("board-column")}[data-category="next-steps"]`).evaluate((el) => getComputedStyle(el).borderTopColor),
    (v) => v === "rgb(190, 18, 60)",
  );
  await settings.locator(`${sel("category-row")}[data-category="next-steps"] ${sel("category-up")}`).click();
  const columnOrder = () => board.locator(sel("board-column")).evaluateAll((els) => els.map((el) => el.dataset.category));
  await poll("next steps before wonderings", columnOrder, (ids) => ids.indexOf("next-steps") === ids.indexOf("wonderings") - 1);
  await board.fill(sel("category-new-label"), "Materials");
  await board.locator(sel("category-new-add")).click();
  await poll("six columns", async () => (await columnOrder()).length, (n) => n === 6);
  await board.screenshot({ path: path.join(shots, "debrief-categories.png") });
  await board.locator(sel("categories-close")).click();
  await waitVisible(settings, false, "the category settings after Done");
  // The phones follow: the new label, the new order, the new category.
  for (const page of [Ana, Ben]) {
    await poll(
      "the phone's chips",
      () => page.locator(sel("category-chip")).evaluateAll((els) => els.map((el) => [el.dataset.category, el.textContent.trim()])),
      (chips) => chips.length === 6 && chips[3][0] === "next-steps" && chips[3][1] === "Try next time" && chips[5][1] === "Materials",
    );
  }

  checkBrowserLog(t, browser);
});
