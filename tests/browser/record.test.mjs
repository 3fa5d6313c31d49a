// The lab's record (issue #13): a whole lab is run — two lessons with notes from two phones, a
// time-out with a note written during it, a hidden note, a cluster, picks, agreements and next
// steps — the facilitator ends it and opens `/lab/{id}/record` from the board. The page shows
// the record with Print and Download, passes axe, fits a phone's width; printed to PDF
// (`page.pdf`, Letter and A4) it holds every agreement, next step and visible note, not the
// hidden one and none of the page's controls, and no word is split across lines (checked in
// the print layout itself, word by word, and in the PDF's text). Download gives the same
// self-contained HTML file.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { moveNoteTo, noteAction, undoToast } from "./board-helpers.mjs";
import { TEST_TIMEOUT, audit, boardNote, checkBrowserLog, feedNote, open, poll, postNote, sel, waitCount, waitStatus } from "./harness.mjs";
import { attachPhoto, cameraPhoto } from "./photos.mjs";
import { pdfLines, printedHolds, wordsNotWhole } from "./pdftext.mjs";
import { addAgreement, startPhase } from "./phone.mjs";
import { joinPhones, projectLab, screenshotDir, text, waitVisible } from "./scenario.mjs";

const LESSON_1 = [
  ["Ana", "student-thinking", "Quillon counted on from eight: nine, ten, eleven, twelve, thirteen, tapping fingers under the table"],
  ["Ben", "strategies", "Table four wrote 8 + 5 = 13 & said <it is easy> because five splits into two and three"],
  ["Ana", "teacher-moves", "Teacher asked how do you know it is thirteen, then waited ten full seconds before calling on anyone"],
  ["Ben", "wonderings", "Do they see the ten-frame as one ten, or do they still count every single dot separately?"],
];
const DURING_TIMEOUT = "During the pause Marisol explained doubles plus one: six plus six is twelve, one more makes thirteen";
const HIDDEN = "Mistaken duplicate Zanzibarian remark that the facilitator hid";
const LESSON_2 = [
  ["Ben", "strategies", "Second lesson: Octavio moved two counters across to complete the first ten-frame immediately"],
  ["Ana", "student-thinking", "Several children now said make ten first, then add the leftover three without recounting"],
];
const AGREEMENTS = [
  "Launch the second lesson with nine plus four so making ten is needed",
  "Give every pair one shared ten-frame instead of individual worksheets",
  "Plan a follow-up lab in February on subtraction across ten",
];
const NEXT_STEPS = [
  ["Ana", "Run a number talk on making ten with my grade two team on Tuesday"],
  ["Ben", "Share the ten-frame launch with the grade one teachers at Thursday's meeting"],
];
const CLUSTER = "Making a ten first";

const allTexts = () => [
  ...LESSON_1.map(([, , body]) => body),
  DURING_TIMEOUT,
  ...LESSON_2.map(([, , body]) => body),
  ...AGREEMENTS,
  ...NEXT_STEPS.map(([, body]) => body),
];

const escapeHtml = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");

/** Words of the record's texts that the print layout breaks across two lines (none, we hope). */
async function splitWordsInPrint(page) {
  return page.evaluate(() => {
    const split = [];
    for (const el of document.querySelectorAll("main.record .text, main.record li, main.record p, main.record td")) {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const re = /\S+/g;
        for (let m = re.exec(node.data); m; m = re.exec(node.data)) {
          const range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
          if (tops.size > 1) split.push(m[0]);
        }
      }
    }
    return [...new Set(split)];
  });
}

test("the record of a whole lab: on screen, downloaded, and printed to PDF on Letter and A4", { timeout: TEST_TIMEOUT * 3 }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: the lab's record", school: "Oak Street Elementary", grade: "2" });
  const phones = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben"]);
  const all = Object.values(phones);

  await startPhase(board, "lesson-1", all);
  for (const [who, category, body] of LESSON_1) await postNote(phones[who], category, body);
  await postNote(phones.Ben, "student-thinking", HIDDEN);
  // A time-out recorded from the board, with a note written during it.
  await board.locator(sel("timeout-call")).click();
  await waitVisible(phones.Ana.locator(sel("timeout-banner")), true, "the time-out on Ana's phone");
  await postNote(phones.Ana, "student-thinking", DURING_TIMEOUT);
  await board.locator(sel("timeout-end")).click();
  await waitVisible(phones.Ana.locator(sel("timeout-banner")), false, "the time-out ended");
  for (const [, category, body] of [...LESSON_1, ["", "student-thinking", DURING_TIMEOUT], ["", "student-thinking", HIDDEN]]) {
    await waitCount(boardNote(board, category, body), 1, `"${body}" on the board`);
  }
  // The facilitator hides a note, and makes a cluster with one note in it.
  await noteAction(boardNote(board, "student-thinking", HIDDEN), "note-hide");
  await (await undoToast(board)).waitFor({ state: "hidden", timeout: 20_000 });
  await board.locator(`${sel("view-toggle")}[data-view="clusters"]`).click();
  await board.fill(sel("cluster-new-label"), CLUSTER);
  await board.locator(sel("cluster-add")).click();
  await board.locator(sel("cluster")).first().waitFor();
  await board.locator(`${sel("view-toggle")}[data-view="columns"]`).click();
  await moveNoteTo(boardNote(board, "strategies", LESSON_1[1][2]), CLUSTER);

  // Debrief 1: two agreements, and Ana picks two notes.
  await startPhase(board, "debrief-1", all);
  await addAgreement(board, AGREEMENTS[0], "Teacher");
  await addAgreement(board, AGREEMENTS[1], "");
  const picks = phones.Ana.locator(sel("note-pick"));
  await picks.first().waitFor();
  for (const i of [0, 1]) {
    await picks.nth(i).tap();
    await poll(`pick ${i + 1}`, () => picks.nth(i).getAttribute("aria-pressed"), (v) => v === "true");
  }

  // Lesson 2, then the final debrief with an agreement and each coach's next step.
  await startPhase(board, "lesson-2", all);
  // Ben's first note of lesson 2 carries a photo of the child's ten-frame.
  await attachPhoto(phones.Ben, await cameraPhoto(phones.Ben, "O. — 8 + 5"));
  for (const [who, category, body] of LESSON_2) await postNote(phones[who], category, body);
  await waitStatus(feedNote(phones.Ben, LESSON_2[0][2]), "synced");
  await startPhase(board, "final-debrief", all);
  await addAgreement(board, AGREEMENTS[2], "Principal");
  for (const [who, body] of NEXT_STEPS) {
    const page = phones[who];
    await waitVisible(page.locator(sel("next-steps")), true, `the next steps on ${who}'s phone`);
    await page.fill(sel("next-step-text"), body);
    await page.locator(sel("next-step-add")).tap();
    await poll(`${who}'s next step saved`, () => page.locator(sel("next-step-item")).filter({ hasText: body }).getAttribute("data-status"), (v) => v === "synced");
  }
  for (const [, category, body] of LESSON_2) await waitCount(boardNote(board, category, body), 1, `"${body}" on the board`);

  // The facilitator ends the lab and opens the record from the board.
  await board.locator(sel("end-lab")).click();
  await board.locator(sel("end-dialog-confirm")).click();
  await waitVisible(board.locator(sel("board-ended")), true, "Lab ended on the board");
  const recordLink = board.locator(sel("record-link"));
  await waitVisible(recordLink, true, "the Record link on the board");
  const record = await board.context().newPage();
  await open(record, `${origin}${await recordLink.getAttribute("href")}`);
  await waitVisible(record.locator(sel("record-print")), true, "Print on the record");
  const shown = await record.locator("main.record").innerText();
  for (const body of allTexts()) assert.ok(shown.includes(body), `the record shows "${body}"`);
  assert.ok(!shown.includes(HIDDEN), "the hidden note is left out");
  assert.match(shown, /1 hidden, left out/);
  // The photo is in the record itself, under its note.
  const photo = record.locator('main.record img[alt="Photo 1 of 1 on Ben\'s note"]');
  await waitCount(photo, 1, "the photo in the record");
  assert.ok(await photo.evaluate((img) => img.complete && img.naturalWidth === 1600 && img.src.startsWith("data:image/jpeg;base64,")), "the record shows the photo, embedded");
  assert.match(shown, /Making ten: the lab's record/);
  assert.match(shown, /Oak Street Elementary · Grade 2/);
  assert.match(shown, /Lesson 1 beside Lesson 2/);
  assert.match(shown, /Time-out 1/);
  assert.match(shown, new RegExp(`${CLUSTER}\\s+1 note`));
  // The note written during the time-out is listed under it.
  const timeouts = await record.locator("#timeouts").innerText();
  assert.ok(timeouts.includes(DURING_TIMEOUT), "the note written during the time-out is under it");
  assert.ok(!timeouts.includes(LESSON_2[0][2]), "a later note is not under the time-out");
  await audit(record, "the record at projector size");
  const shots = screenshotDir(t);
  await record.screenshot({ path: path.join(shots, "record.png") });
  await photo.scrollIntoViewIfNeeded();
  await record.screenshot({ path: path.join(shots, "record-photo.png") });

  // Download: the same self-contained file.
  const [download] = await Promise.all([record.waitForEvent("download"), record.locator(sel("record-download")).click()]);
  assert.match(download.suggestedFilename(), /^making-ten-.*-record\.html$/);
  const file = await readFile(await download.path(), "utf8");
  assert.match(file, /^<!doctype html>/);
  assert.ok(!/<script|<link/i.test(file), "the file runs nothing and links nothing");
  const sources = [...file.matchAll(/src=("[^"]{0,40})/gi)].map((m) => m[1]);
  assert.equal(sources.length, 1, "one picture in the file: the photo");
  assert.ok(sources.every((src) => src.startsWith('"data:image/jpeg;base64,')), `every source is an embedded image: ${sources}`);
  for (const body of allTexts()) assert.ok(file.includes(escapeHtml(body)), `the file holds "${body}"`);

  // On a phone's width it reads without sideways scrolling.
  await record.setViewportSize({ width: 390, height: 844 });
  await record.screenshot({ path: path.join(shots, "record-phone.png") });
  const wide = await record.evaluate(() =>
    [...document.querySelectorAll("body *")]
      .filter((el) => !el.closest(".table-wrap") && el.getBoundingClientRect().right > window.innerWidth + 1)
      .map((el) => `${el.tagName}.${el.className}`)
      .slice(0, 5),
  );
  assert.deepEqual(wide, [], "nothing but a wide table (which scrolls in its own box) reaches past the right edge at 390 px");
  assert.equal(await record.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), true, "the page does not scroll sideways at 390 px");

  // Print: Letter and A4.
  for (const [format, widthPx] of [
    ["Letter", 816],
    ["A4", 794],
  ]) {
    // The print layout at the page's width (paper less the record's 14 mm side margins).
    await record.emulateMedia({ media: "print" });
    await record.setViewportSize({ width: Math.floor(widthPx - (2 * 14 * 96) / 25.4), height: 1000 });
    const barDisplay = await record.evaluate(() => { const bar = document.querySelector(".record-bar"); return bar ? [getComputedStyle(bar).display, matchMedia("print").matches, [...document.querySelectorAll("style")].map((s) => `${s.dataset.record}:${s.disabled}:${s.textContent.length}`).join(" ")] : "none"; });
    assert.equal(await record.locator(sel("record-print")).isVisible(), false, `no controls in print (${format}): ${JSON.stringify(barDisplay)}`);
    assert.deepEqual(await splitWordsInPrint(record), [], `no word split across lines in the ${format} print layout`);
    const pdf = await record.pdf({ format });
    const pages = await pdfLines(pdf);
    assert.ok(pages.length >= 2, `the ${format} record has its pages (${pages.length})`);
    for (const body of allTexts()) {
      assert.deepEqual(wordsNotWhole(pages, body), [], `every word of "${body}" printed whole on ${format}`);
    }
    for (const body of AGREEMENTS) assert.ok(printedHolds(pages, body), `the agreement "${body}" printed on ${format}`);
    const printed = pages.flatMap((p) => p.lines).join("\n");
    assert.ok(!printed.includes("Zanzibarian"), `the hidden note is not printed on ${format}`);
    for (const control of ["Download", "Your labs"]) assert.ok(!printed.includes(control), `no "${control}" control printed on ${format}`);
    await record.emulateMedia({ media: "screen" });
  }
  assert.equal(await text(record.locator("h1")), "Making ten: the lab's record");
  checkBrowserLog(t, browser);
});
