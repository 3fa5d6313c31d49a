// Helpers for the projector board's tests: a card's tools sit behind its "⋯" button.

import { CATEGORIES, createLabAndOpenBoard, poll, sel, setUp, waitAttr, waitCount } from "./harness.mjs";

/** A card's menu (while open it lives at the end of the page, by the card's note id). */
export async function menuOf(card) {
  const id = await card.getAttribute("data-note-id");
  return card.page().locator(`${sel("note-menu")}[data-note-id="${id}"]`);
}

/** Opens a card's menu (its one visible "⋯" button) and waits for it. */
export async function openNoteMenu(card) {
  const button = card.locator(sel("note-tools-open"));
  if ((await button.getAttribute("aria-expanded")) !== "true") await button.click();
  const menu = await menuOf(card);
  await menu.waitFor({ state: "visible" });
  return menu;
}

/** Runs one of a card's tools (`note-pin`, `note-highlight`, `note-hide`, `note-focus`, `note-uncluster`). */
export async function noteAction(card, testid) {
  const menu = await openNoteMenu(card);
  await menu.locator(sel(testid)).click();
}

/** Chooses a cluster in a card's menu ("" takes it out). */
export async function moveNoteTo(card, label) {
  const menu = await openNoteMenu(card);
  await menu.locator(sel("note-move")).selectOption({ label });
}

/** Waits until the undo toast shows, and returns it. */
export async function undoToast(page) {
  const toast = page.locator(sel("undo-toast"));
  await toast.waitFor({ state: "visible" });
  await waitCount(toast, 1, "undo toast");
  return toast;
}

/**
 * Posts many notes from one phone quickly: `entries` is a list of [category, text]. Waits only
 * for the box to empty between notes (the send took it), not for each note in the feed.
 */
export async function postMany(page, entries) {
  let chosen;
  for (const [category, text] of entries) {
    if (category !== chosen) {
      const chip = page.locator(`${sel("category-chip")}[data-category="${category}"]`);
      await chip.tap();
      await poll(`chip ${category} pressed`, () => chip.getAttribute("aria-pressed"), (v) => v === "true");
      chosen = category;
    }
    await page.fill(sel("note-text"), text);
    await page.locator(sel("note-send")).tap();
    await poll("the note box to be emptied", () => page.inputValue(sel("note-text")), (v) => v === "");
  }
}

/** The lab on a board page opened at `size` (PROJECTOR, TABLET …), light or dark. */
export async function boardAt(t, size, lab, colorScheme = "light") {
  const world = await setUp(t, { firstContextOptions: { ...size, colorScheme } });
  const board = await world.browser.first.newPage();
  const created = await createLabAndOpenBoard(board, world.origin, lab);
  return { ...world, board, lab: created };
}

/** Starts a phase from the board's phase bar (forward: no question asked). */
export async function startPhase(board, phaseId) {
  await board.locator(`${sel("phase-item")}[data-phase="${phaseId}"]`).click();
  await waitAttr(board, "phase-bar", "data-current", phaseId);
}

/** Realistic low-inference notes of varied length, `n` of them, spread over the categories. */
export function sampleNotes(n, categories = CATEGORIES) {
  const stems = [
    "T. counted on from 8: 9, 10, 11, 12, 13",
    "R. made a ten with 8 + 2, then added 3",
    "Table 4 split 13 into 10 and 3 with the ten-frames",
    "The teacher asked: how do you know it is 13? Two hands went up",
    "J. wrote 8 + 5 = 12, then crossed it out and counted again on his fingers",
    "M. used the number line, jumping by ones from 8 to 13, saying each number aloud",
    "Wonder: would a double (6 + 6) have helped the table that was stuck?",
    "Partners compared strategies; S. said hers was faster because she made a ten first",
  ];
  return Array.from({ length: n }, (_, i) => [categories[i % categories.length], `${stems[i % stems.length]} (#${i + 1})`]);
}
