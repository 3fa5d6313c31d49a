// Ending a lab: a phone holds one note it wrote offline, the facilitator ends the lab from the
// board (after a question on the page; Cancel keeps it running), and when the phone is back online it says the lab has ended and
// that 1 note was not sent, with no composer; a phone that learns it only when it opens (from
// /api/session) says so too; the board shows "Lab ended" without its End lab control. axe on both.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  TEST_TIMEOUT,
  audit,
  boardNote,
  checkBrowserLog,
  feedNote,
  postNote,
  sel,
  waitAttr,
  waitCount,
  waitNumber,
  waitReady,
  waitStatus,
} from "./harness.mjs";
import { joinPhone, projectLab, text, waitVisible } from "./scenario.mjs";

test("an ended lab is read-only on the phones and the board, and unsent notes are counted", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten, the last lab" });
  const phone = await joinPhone(browser, origin, lab.joinCode, "Dana", { label: "phone" });
  const reader = await joinPhone(browser, origin, lab.joinCode, "Eli", { label: "reader" });

  const sent = "Before the end: K. used doubles, 6 + 6 then one more";
  await postNote(phone, "strategies", sent);
  await waitStatus(feedNote(phone, sent), "synced");
  await waitCount(boardNote(board, "strategies", sent), 1, "the sent note on the board");
  await waitCount(feedNote(reader, sent), 1, "the sent note on the second phone");

  // One note written offline waits on the phone.
  const ctx = phone.context();
  await ctx.setOffline(true);
  await waitAttr(phone, "connection", "data-state", "offline");
  const unsent = "Offline: L. counted all 14 from one";
  await postNote(phone, "student-thinking", unsent);
  await waitStatus(feedNote(phone, unsent), "waiting");
  await waitNumber(phone, "pending-count", "one note waiting", (n) => n === 1);

  // The facilitator ends the lab, confirming first.
  const endButton = board.locator(sel("end-lab"));
  await waitVisible(endButton, true, "the End lab control");
  await endButton.click();
  const dialog = board.locator(sel("end-dialog"));
  await waitVisible(dialog, true, "the question before ending");
  assert.match(await text(dialog), /End this lab\?/);
  await audit(board, "the board asking before it ends the lab");
  // Cancel keeps the lab running.
  await board.locator(sel("end-dialog-cancel")).click();
  await waitVisible(dialog, false, "no question after Cancel");
  assert.equal(await board.locator(sel("board-ended")).isVisible(), false, "the lab still runs");
  await endButton.click();
  await board.locator(sel("end-dialog-confirm")).click();
  await waitVisible(board.locator(sel("board-ended")), true, "Lab ended on the board");
  assert.equal(await text(board.locator(sel("board-ended"))), "Lab ended");
  await waitVisible(endButton, false, "no End lab control once ended");
  assert.equal(await board.locator(sel("board-join-code")).isVisible(), false, "the join code is gone");

  // Back online: the server refuses the note, and the phone says so.
  await ctx.setOffline(false);
  await waitVisible(phone.locator(sel("lab-ended")), true, "the phone says the lab has ended");
  assert.match(await text(phone.locator(sel("lab-ended"))), /This lab has ended/);
  await waitVisible(phone.locator(sel("not-sent")), true, "the count of notes not sent");
  await waitAttr(phone, "connection", "data-state", "ended");
  assert.equal(await text(phone.locator(sel("connection"))), "Lab ended", "the top bar says ended, not offline");
  assert.equal(await text(phone.locator(sel("not-sent"))), "1 note was not sent. It stays on this phone.");
  await waitVisible(phone.locator(sel("composer")), false, "no composer once ended");
  assert.equal(await phone.locator(sel("note-edit")).filter({ visible: true }).count(), 0, "no Edit once ended");
  assert.equal(await phone.locator(sel("note-delete")).filter({ visible: true }).count(), 0, "no Delete once ended");
  // The note stays on the phone, and never reaches the board.
  await waitCount(feedNote(phone, unsent), 1, "the unsent note kept on the phone");
  assert.equal(await boardNote(board, "student-thinking", unsent).count(), 0, "the unsent note is not on the board");

  // A phone with nothing unsent learns it when it opens the lab, from /api/session.
  await reader.reload();
  await waitReady(reader);
  await waitVisible(reader.locator(sel("lab-ended")), true, "the second phone says the lab has ended");
  assert.equal(await reader.locator(sel("not-sent")).isVisible(), false, "nothing unsent on the second phone");
  await waitVisible(reader.locator(sel("composer")), false, "no composer on the second phone");
  await waitCount(feedNote(reader, sent), 1, "the board still reads on the second phone");

  await audit(phone, "the phone of an ended lab with a note not sent");
  await audit(board, "the board of an ended lab");
  checkBrowserLog(t, browser);
});
