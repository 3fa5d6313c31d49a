// Scenario 3: a note's text is data, never markup: HTML typed into a note shows as literal
// text on the phone feed and on the projector board, and none of it runs.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  TEST_TIMEOUT,
  boardNote,
  checkBrowserLog,
  feedNote,
  joinByCode,
  postNote,
  sel,
  waitCount,
  waitStatus,
} from "./harness.mjs";
import { newPhone, projectLab } from "./scenario.mjs";

const PAYLOADS = [
  ["student-thinking", `<img src=x onerror="window.__xss=1">`],
  ["wonderings", `</textarea><script>window.__xss=2</script><b>bold?</b> & &amp; "quotes" 'too'`],
  ["next-steps", `<svg onload="window.__xss=3"></svg><a href="javascript:window.__xss=4">link</a>`],
];

async function assertLiteral(page, note, text, where) {
  const body = note.locator(sel("note-body"));
  assert.equal(await body.count(), 1, `${where}: one note-body`);
  assert.equal(await body.evaluate((el) => el.textContent), text, `${where}: note-body text equals the input`);
  assert.equal(await body.evaluate((el) => el.children.length), 0, `${where}: note-body holds text only`);
  assert.equal(
    await note.evaluate((el) => el.querySelectorAll("img, script, svg, a[href^='javascript']").length),
    0,
    `${where}: no element made from the note's text`,
  );
  assert.equal(await page.evaluate(() => typeof window.__xss), "undefined", `${where}: window.__xss undefined`);
}

test("note text renders as literal text on the phone and on the board", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Escaping <b>check</b> & co" });

  const author = await newPhone(browser, "phone-author");
  await joinByCode(author, origin, lab.joinCode, `<img src=y onerror="window.__xss=9">`);

  for (const [category, text] of PAYLOADS) {
    await postNote(author, category, text);
    await waitStatus(feedNote(author, text), "synced");
    await waitCount(boardNote(board, category, text), 1, `the payload in the ${category} column`);
  }

  // A second phone that joins later gets the notes from the server, not from its own input.
  const reader = await newPhone(browser, "phone-reader");
  await joinByCode(reader, origin, lab.joinCode, "Reader");
  for (const [, text] of PAYLOADS) await waitCount(feedNote(reader, text), 1, "the payload in a second feed");

  for (const [category, text] of PAYLOADS) {
    await assertLiteral(author, feedNote(author, text), text, "author's feed");
    await assertLiteral(reader, feedNote(reader, text), text, "reader's feed");
    await assertLiteral(board, boardNote(board, category, text), text, "board");
  }
  // Also after a reload (the doc rendered from IndexedDB and the server, not from the form).
  await board.reload();
  await board.waitForSelector("body[data-ready='1']", { state: "attached" });
  for (const [category, text] of PAYLOADS) {
    await waitCount(boardNote(board, category, text), 1, "the payload after a board reload");
    await assertLiteral(board, boardNote(board, category, text), text, "board after reload");
  }
  // The title and the author's name are shown as text as well.
  for (const page of [author, reader, board]) {
    assert.equal(await page.evaluate(() => typeof window.__xss), "undefined", "no payload ran");
    assert.equal(await page.locator("img[src=x], img[src=y]").count(), 0, "no injected img anywhere");
  }

  checkBrowserLog(t, browser);
});
