// Scenario 5: a phone's sign-in expires while it holds a note it could not send. It is sent to
// the join page with a message, keeps the note, and after joining the same lab again the note
// syncs. Meanwhile the projector's facilitator sign-in expires too, and the board renews it by
// itself and keeps showing new notes. The server runs with `--token-ttl 5s`.

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
  waitAttr,
  waitCount,
  waitNumber,
  waitReady,
  waitStatus,
} from "./harness.mjs";
import { newPhone, projectLab } from "./scenario.mjs";

const TTL_MS = 5_000;

test("an expired sign-in leads to the join page and keeps the unsent note", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Short sign-ins" }, { serverArgs: ["--token-ttl", `${TTL_MS}ms`] });

  const phone = await newPhone(browser, "phone");
  const ctx = phone.context();
  await joinByCode(phone, origin, lab.joinCode, "Eli");
  // Taken once the join is done, so no earlier than the server issued the phone's token (the join
  // itself takes a second or more): the wait below then always outlasts the token.
  const joinedAt = Date.now();
  const labPath = new URL(phone.url()).pathname;
  assert.equal(labPath, `/lab/${lab.labId}`);
  await waitAttr(phone, "connection", "data-state", "online");

  await ctx.setOffline(true);
  await waitAttr(phone, "connection", "data-state", "offline");
  const text = "Written offline: P. split 9 + 4 into 9 + 1 + 3";
  await postNote(phone, "strategies", text);
  await waitStatus(feedNote(phone, text), "waiting");
  await waitNumber(phone, "pending-count", "pending count 1", (n) => n === 1);

  // Let the sign-in expire (a precondition, not an assertion: the server's clock decides).
  const left = joinedAt + TTL_MS + 500 - Date.now();
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  await ctx.setOffline(false);

  // Back online with an expired token: the phone is sent to the join page, told why.
  const message = phone.locator(sel("join-message"));
  await message.waitFor({ state: "visible" });
  await waitReady(phone);
  const said = ((await message.textContent()) ?? "").trim();
  assert.ok(said.length > 0, "the join page says why");
  t.diagnostic(`join-message: ${said}`);
  assert.doesNotMatch(new URL(phone.url()).pathname, /^\/lab\//, "no longer on the lab page");

  // Join the same lab again (the code may be filled in already).
  await phone.fill(sel("join-code"), lab.joinCode);
  await phone.fill(sel("join-name"), "Eli");
  await phone.locator(sel("join-submit")).tap();
  await phone.waitForURL(`**${labPath}`);
  await waitReady(phone);
  await waitCount(feedNote(phone, text), 1, "the unsent note after re-joining");
  await waitStatus(feedNote(phone, text), "synced");
  await waitNumber(phone, "pending-count", "pending count 0", (n) => n === 0);

  // The server really has it: the projector, whose own sign-in has expired meanwhile and been
  // renewed with the facilitator key, shows it; so does a second phone that joins now.
  await waitCount(boardNote(board, "strategies", text), 1, "the note on the board");
  assert.match(new URL(board.url()).pathname, /\/board$/, "the board is still the board");
  const other = await newPhone(browser, "phone-2");
  await joinByCode(other, origin, lab.joinCode, "Fay");
  await waitCount(feedNote(other, text), 1, "the note on a second phone");

  checkBrowserLog(t, browser);
});
