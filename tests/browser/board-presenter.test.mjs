// The projector board in presenter mode (issue #12, defects 7, 8 and 11): in a debrief the join
// header shrinks to a small code chip, the notes pack densely with no scroll trap (the page
// scrolls, not a column), note text is at least 24 px at 1080p, 40 notes fit the screen at
// 1920x1080; a long note is clamped with a visible "more" and opens whole in focus; every text
// passes axe (light and dark, projector and tablet). The screenshot of 40 notes in presenter
// mode is docs/screenshots/board-presenter.png when LABBOARD_SCREENSHOT_DIR=docs/screenshots.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { PROJECTOR, TABLET, TEST_TIMEOUT, audit, checkBrowserLog, sel, waitCount } from "./harness.mjs";
import { boardHasPhases, joinPhones, screenshotDir, text, waitVisible } from "./scenario.mjs";
import { boardAt, menuOf, moveNoteTo, postMany, sampleNotes, startPhase } from "./board-helpers.mjs";

const LONG = `L. explained her whole strategy: ${"she put 8 in the ten-frame, moved 2 of the 5 over to fill it, and then she saw 3 left, so 10 and 3 is 13; ".repeat(6)}then she checked by counting on.`;

const SHORT = "Quiet table: R. drew ten dots";

/** Every card's box, and the viewport. */
const cardBoxes = (board) =>
  board.evaluate(() => ({
    width: innerWidth,
    height: innerHeight,
    boxes: [...document.querySelectorAll("[data-testid=board-note]")].map((el) => {
      const r = el.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, left: r.left, right: r.right };
    }),
  }));

/** Elements of the notes area that scroll on their own (overflow auto/scroll with more content). */
const scrollTraps = (board) =>
  board.evaluate(() =>
    [...document.querySelectorAll(".board-main *")]
      .filter((el) => {
        const s = getComputedStyle(el);
        return /(auto|scroll)/.test(s.overflowY) && el.scrollHeight > el.clientHeight + 1 && !el.closest("[data-testid=agreements-panel]");
      })
      .map((el) => el.className),
  );

test("presenter mode: 40 notes fit 1920x1080 at 24 px, no scroll traps; a long note clamps and opens whole", { timeout: TEST_TIMEOUT * 2 }, async (t) => {
  const { browser, origin, board, lab } = await boardAt(t, PROJECTOR, { title: "Making ten with eight and five: a grade 2 lab", school: "Hillside", grade: "2" });
  const shots = screenshotDir(t);
  if (!(await boardHasPhases(t, board))) return;
  const { Ana, Ben } = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben"]);
  await startPhase(board, "lesson-1");
  const notes = sampleNotes(38);
  await Promise.all([postMany(Ana, [...notes.slice(0, 19), ["strategies", SHORT]]), postMany(Ben, [...notes.slice(19), ["student-thinking", LONG]])]);
  await waitCount(board.locator(sel("board-note")), 40, "40 notes on the board");

  // Before the debrief: the full join header with its QR code.
  assert.equal(await board.locator(sel("board-qr")).isVisible(), true, "the QR code in a lesson");
  assert.equal(await board.locator(sel("join-chip")).isVisible(), false, "no chip in a lesson");

  // The debrief turns presenter mode on by itself.
  await startPhase(board, "debrief-1");
  await waitVisible(board.locator(sel("join-chip")), true, "the join chip");
  assert.equal(await board.locator(sel("presenter-toggle")).getAttribute("aria-pressed"), "true");
  assert.equal(await board.locator(sel("board-qr")).isVisible(), false, "no QR code in presenter mode");
  assert.match(await text(board.locator(sel("join-chip"))), new RegExp(lab.joinCode));
  // The agreements panel opens in a debrief; close it to show the notes alone.
  await board.locator(sel("agreements-toggle")).click();
  await waitVisible(board.locator(sel("agreements-panel")), false, "the agreements panel");
  await board.evaluate(() => document.fonts.ready);
  // The phase change's undo toast, and the notes' arrival glow, are not what the room looks at.
  await board.locator(sel("undo-dismiss")).click();
  await board.evaluate(() => document.getAnimations().forEach((a) => a.finish()));

  const { width, height, boxes } = await cardBoxes(board);
  assert.equal(boxes.length, 40);
  const outside = boxes.filter((b) => b.top < 0 || b.left < 0 || b.bottom > height || b.right > width);
  assert.deepEqual(outside, [], `every one of the 40 cards within ${width}x${height}`);
  const sizes = await board.locator(`${sel("board-note")} ${sel("note-body")}`).evaluateAll((els) => els.map((el) => parseFloat(getComputedStyle(el).fontSize)));
  assert.ok(Math.min(...sizes) >= 24, `note text at least 24 px (smallest ${Math.min(...sizes)})`);
  assert.deepEqual(await scrollTraps(board), [], "nothing scrolls on its own");

  // The long note: clamped, with a visible "more" that opens it whole.
  const long = board.locator(sel("board-note")).filter({ hasText: "L. explained her whole strategy" });
  const more = long.locator(sel("note-more"));
  await waitVisible(more, true, "the long note's more");
  const clamped = await long.locator(sel("note-body")).evaluate((el) => el.scrollHeight > el.clientHeight);
  assert.ok(clamped, "the long note is clamped");
  const short = board.locator(sel("board-note")).filter({ hasText: SHORT });
  assert.equal(await short.locator(sel("note-more")).isVisible(), false, "no more on a short note");
  await audit(board, "board presenter 1920x1080 light");
  await board.screenshot({ path: path.join(shots, "board-presenter.png") });

  await more.click();
  await waitVisible(board.locator(sel("focus-overlay")), true, "the focused long note");
  assert.equal(await text(board.locator(sel("focus-text"))), LONG, "focus shows the whole note");
  await audit(board, "board focus on a long note 1920x1080");
  await board.keyboard.press("Escape");
  await waitVisible(board.locator(sel("focus-overlay")), false, "focus closed");
  assert.equal(await more.evaluate((el) => el === document.activeElement), true, "the focus goes back to more");

  await board.locator(sel("theme-toggle")).click();
  await audit(board, "board presenter 1920x1080 dark");
  await board.screenshot({ path: path.join(shots, "board-presenter-dark.png") });

  // Leaving presenter mode brings the QR code back.
  await board.locator(sel("presenter-toggle")).click();
  await waitVisible(board.locator(sel("board-qr")), true, "the QR code after presenter mode");
  checkBrowserLog(t, browser);
});

test("presenter mode at 300 notes: the page scrolls, every card can be reached, the text stays large", { timeout: TEST_TIMEOUT * 4 }, async (t) => {
  const { browser, origin, board, lab } = await boardAt(t, PROJECTOR, { title: "A long lab", school: "Hillside", grade: "2" });
  if (!(await boardHasPhases(t, board))) return;
  const phones = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben", "Cy"]);
  await startPhase(board, "lesson-1");
  const notes = sampleNotes(300);
  await Promise.all(Object.values(phones).map((p, i) => postMany(p, notes.slice(i * 100, i * 100 + 100))));
  await waitCount(board.locator(sel("board-note")), 300, "300 notes on the board");
  await startPhase(board, "debrief-1");
  await waitVisible(board.locator(sel("join-chip")), true, "presenter mode");
  await board.locator(sel("agreements-toggle")).click();
  assert.deepEqual(await scrollTraps(board), [], "nothing scrolls on its own at 300 notes");
  const page = await board.evaluate(() => ({ scroll: document.scrollingElement.scrollHeight, view: innerHeight }));
  assert.ok(page.scroll > page.view, "the page scrolls");
  const sizes = await board.locator(`${sel("board-note")} ${sel("note-body")}`).evaluateAll((els) => els.map((el) => parseFloat(getComputedStyle(el).fontSize)));
  assert.ok(Math.min(...sizes) >= 24, "note text at least 24 px at 300 notes");
  // The last note in the document's order can be reached by scrolling the page, and used.
  const last = board.locator(sel("board-note")).last();
  await last.scrollIntoViewIfNeeded();
  const box = await last.boundingBox();
  assert.ok(box && box.y >= 0 && box.y + box.height <= 1080, `the last card scrolled into view (${JSON.stringify(box)})`);
  await last.locator(sel("note-tools-open")).click();
  await waitVisible(await menuOf(last), true, "the last card's menu");
  checkBrowserLog(t, browser);
});

for (const scheme of ["light", "dark"]) {
  test(`tablet 1180x820 (touch), ${scheme}: the title is whole, badges fit, every board view passes axe`, { timeout: TEST_TIMEOUT * 2 }, async (t) => {
    const title = "Making ten with eight and five: how second graders decompose to bridge ten";
    const { browser, origin, board, lab } = await boardAt(t, TABLET, { title, school: "Hillside Elementary", grade: "2" }, scheme);
    const shots = screenshotDir(t);
    if (!(await boardHasPhases(t, board))) return;
    const { Ana } = await joinPhones(browser, origin, lab.joinCode, ["Ana"], () => scheme);
    await startPhase(board, "lesson-1");
    await postMany(Ana, sampleNotes(10));
    await waitCount(board.locator(sel("board-note")), 10, "10 notes on the board");
    // The title is not cut: its box holds all of its text.
    const cut = await board.locator(".board-title").evaluate((el) => el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1);
    assert.equal(cut, false, "the title is whole at tablet width");
    assert.equal(await text(board.locator(".board-title")), title);
    await audit(board, `board columns tablet ${scheme}`);
    await board.screenshot({ path: path.join(shots, `board-tablet-${scheme}.png`) });

    await startPhase(board, "debrief-1");
    await audit(board, `board presenter tablet ${scheme}`);
    // Clusters: a long cluster name and its count badge stay inside the cluster.
    await board.locator(`${sel("view-toggle")}[data-view="clusters"]`).click();
    await board.fill(sel("cluster-new-label"), "Decomposing the second addend to make a ten, then adding what is left over");
    await board.locator(sel("cluster-add")).click();
    const cluster = board.locator(sel("cluster")).first();
    await cluster.waitFor();
    const overflow = await cluster.evaluate((box) => {
      const outer = box.getBoundingClientRect();
      return [...box.querySelectorAll(".cluster-head *")].filter((el) => {
        const r = el.getBoundingClientRect();
        return r.right > outer.right + 0.5 || r.left < outer.left - 0.5;
      }).length;
    });
    assert.equal(overflow, 0, "nothing in the cluster's head overflows it");
    // A card in that cluster: its cluster tag stays inside the card, in the columns too.
    await moveNoteTo(board.locator(sel("cluster-pool")).locator(sel("cluster-note")).first(), "Decomposing the second addend to make a ten, then adding what is left over");
    await waitCount(cluster.locator(sel("cluster-note")), 1, "a note in the long-named cluster");
    const tagInside = (card) =>
      card.evaluate((el) => {
        const tag = el.querySelector("[data-testid=board-note-cluster]").getBoundingClientRect();
        const box = el.getBoundingClientRect();
        return tag.width > 0 && tag.right <= box.right + 0.5 && tag.left >= box.left - 0.5;
      });
    assert.equal(await tagInside(cluster.locator(sel("cluster-note")).first()), true, "the cluster tag inside its card (clusters view)");
    await audit(board, `board clusters tablet ${scheme}`);
    await board.screenshot({ path: path.join(shots, `board-tablet-clusters-${scheme}.png`) });
    await board.locator(`${sel("view-toggle")}[data-view="columns"]`).click();
    const tagged = board.locator(sel("board-note")).filter({ has: board.locator(`${sel("board-note-cluster")}:visible`) });
    await waitCount(tagged, 1, "the card with a cluster tag in the columns");
    assert.equal(await tagInside(tagged), true, "the cluster tag inside its card (columns)");
    await board.locator(`${sel("view-toggle")}[data-view="timeline"]`).click();
    await waitVisible(board.locator(sel("timeline")), true, "the timeline");
    await audit(board, `board timeline tablet ${scheme}`);
    await board.locator(`${sel("view-toggle")}[data-view="children"]`).click();
    await audit(board, `board by child tablet ${scheme}`);
    checkBrowserLog(t, browser);
  });
}
