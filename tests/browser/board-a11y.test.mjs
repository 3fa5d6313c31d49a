// Every view of the projector board passes axe-core (0 serious or critical violations), light and
// dark, at 1920x1080 (issue #12, defect 11): columns with every category's count badge (white on
// the green and orange category colours was 3.29:1 and 3.55:1; badges are drawn darker, the
// stored colours unchanged), presenter mode, timeline, clusters, by child, the focus overlay, a
// note's menu and the settings panels.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CATEGORIES, PROJECTOR, TEST_TIMEOUT, audit, boardNote, checkBrowserLog, postNote, sel } from "./harness.mjs";
import { boardHasPhases, joinPhones, waitVisible } from "./scenario.mjs";
import { boardAt, noteAction, openNoteMenu, startPhase } from "./board-helpers.mjs";

for (const scheme of ["light", "dark"]) {
  test(`every board view passes axe at 1920x1080, ${scheme}`, { timeout: TEST_TIMEOUT * 2 }, async (t) => {
    const { browser, origin, board, lab } = await boardAt(t, PROJECTOR, { title: `Contrast (${scheme})`, school: "Hillside", grade: "2" }, scheme);
    if (!(await boardHasPhases(t, board))) return;
    const { Ana } = await joinPhones(browser, origin, lab.joinCode, ["Ana"], () => scheme);
    await startPhase(board, "lesson-1");
    // A note in every category, so every category's count badge shows.
    for (const [i, category] of CATEGORIES.entries()) await postNote(Ana, category, `Note ${i + 1}: T. counted on from 8 to 13`);
    const badge = board.locator(`${sel("board-column")}[data-category="strategies"] .column-count`);
    const colors = await badge.evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
    assert.notEqual(colors[1], "rgb(22, 163, 74)", "the green badge is not drawn on the stored green");
    await audit(board, `columns in a lesson (${scheme})`);
    await noteAction(boardNote(board, "strategies", "Note 2: T. counted on from 8 to 13"), "note-highlight");
    await noteAction(boardNote(board, "wonderings", "Note 4: T. counted on from 8 to 13"), "note-pin");
    await openNoteMenu(boardNote(board, "teacher-moves", "Note 3: T. counted on from 8 to 13"));
    await audit(board, `columns with a highlight, a pin and a menu open (${scheme})`);
    await board.keyboard.press("Escape");

    await startPhase(board, "debrief-1");
    await waitVisible(board.locator(sel("join-chip")), true, "presenter mode");
    await audit(board, `presenter mode with the agreements panel (${scheme})`);
    for (const view of ["timeline", "clusters", "children", "columns"]) {
      await board.locator(`${sel("view-toggle")}[data-view="${view}"]`).click();
      await board.evaluate(() => document.getAnimations().forEach((a) => a.finish()));
      await audit(board, `the ${view} view in the debrief (${scheme})`);
    }
    await noteAction(boardNote(board, "strategies", "Note 2: T. counted on from 8 to 13"), "note-focus");
    await audit(board, `the focus overlay (${scheme})`);
    await board.keyboard.press("Escape");
    for (const panel of ["categories-settings", "phases-settings"]) {
      await board.locator(sel(panel)).click();
      await audit(board, `the ${panel} panel (${scheme})`);
      await board.locator(sel(panel)).click();
    }
    checkBrowserLog(t, browser);
  });
}
