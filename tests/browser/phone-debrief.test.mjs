// The phone in the debriefs (issue #12, defect 9, picks and next steps), at 390x844 with touch:
// - an agreement added on the board raises a signal on a phone scrolled down its feed, in view,
//   and "Show" brings the agreements into view;
// - in the final debrief the phone shows every agreement of the lab;
// - in a debrief each coach picks up to the lab's limit (7) of notes, sees how many are left,
//   and cannot pick an eighth;
// - in the final debrief a coach writes next steps, edits and deletes their own (nobody else
//   can), and sees everyone's on the phone afterwards, after a reload too.

import assert from "node:assert/strict";
import { test } from "node:test";
import { TEST_TIMEOUT, audit, checkBrowserLog, poll, postNote, sel } from "./harness.mjs";
import { boardHasPhases, joinPhones, projectLab, screenshotDir, waitVisible } from "./scenario.mjs";
import { addAgreement, reachable, startPhase, text } from "./phone.mjs";
import path from "node:path";

test("agreements reach the phones: a signal while scrolled, all of them in the final debrief", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: debrief on the phone" }, { colorScheme: "light" });
  if (!(await boardHasPhases(t, board))) return;
  const { Ana } = await joinPhones(browser, origin, lab.joinCode, ["Ana"]);
  await startPhase(board, "lesson-1", [Ana]);
  assert.equal(await Ana.locator(sel("note-pick")).count(), 0, "no picks before a debrief");
  for (let i = 1; i <= 8; i++) await postNote(Ana, "student-thinking", `Note ${i}: T. counted on from 8, then checked with a ten-frame`);
  assert.equal(await Ana.locator(sel("note-pick")).first().isVisible(), false, "no picking during a lesson");

  // Debrief 1; Ana reads the bottom of her feed.
  await startPhase(board, "debrief-1", [Ana]);
  await Ana.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  const signal = Ana.locator(sel("agreement-signal"));
  assert.equal(await signal.isVisible(), false, "no signal before an agreement");
  await addAgreement(board, "Open with a number talk on making ten", "Kim");
  await waitVisible(signal, true, "the new-agreement signal");
  assert.equal(await reachable(Ana, signal), true, "the signal is on screen while scrolled down");
  assert.match(await text(signal), /Open with a number talk on making ten/);
  await audit(Ana, "phone with a new-agreement signal");
  await Ana.screenshot({ path: path.join(screenshotDir(t), "phone-agreement-signal.png") });
  await Ana.locator(sel("agreement-signal-show")).tap();
  await waitVisible(signal, false, "the signal after Show");
  await Ana.waitForFunction(() => {
    const r = document.querySelector("[data-testid=agreements-carried]")?.getBoundingClientRect();
    return !!r && r.top >= 0 && r.bottom <= window.innerHeight;
  });
  assert.match(await text(Ana.locator(sel("agreements-carried"))), /Open with a number talk/);

  // Picks: seven of the eight notes, then the eighth is refused with a reason.
  await Ana.evaluate(() => window.scrollTo(0, 0));
  const picks = Ana.locator(sel("note-pick"));
  await waitVisible(Ana.locator(sel("picks-bar")), true, "the picks bar in a debrief");
  assert.equal(await text(Ana.locator(sel("picks-left"))), "7 of 7 picks left.");
  for (let i = 0; i < 7; i++) {
    await picks.nth(i).tap();
    await poll(`pick ${i + 1}`, () => picks.nth(i).getAttribute("aria-pressed"), (v) => v === "true");
  }
  assert.equal(await text(Ana.locator(sel("picks-left"))), "0 of 7 picks left.");
  await picks.nth(7).tap();
  await waitVisible(Ana.locator(sel("picks-message")), true, "why the eighth pick did not happen");
  assert.match(await text(Ana.locator(sel("picks-message"))), /all 7 of your picks/);
  assert.equal(await picks.nth(7).getAttribute("aria-pressed"), "false", "no eighth pick");
  await audit(Ana, "phone picking in debrief 1");
  // Down the feed, how many picks are left stays in sight.
  await picks.nth(7).scrollIntoViewIfNeeded();
  await Ana.screenshot({ path: path.join(screenshotDir(t), "phone-picks.png") });
  assert.equal(await reachable(Ana, Ana.locator(sel("picks-bar"))), true, "picks left in sight down the feed");
  // Taking one back frees a pick.
  await picks.nth(0).tap();
  await poll("one pick left", () => text(Ana.locator(sel("picks-left"))), (v) => v === "1 of 7 picks left.");
  await picks.nth(7).tap();
  await poll("the eighth note picked", () => picks.nth(7).getAttribute("aria-pressed"), (v) => v === "true");

  // The final debrief: every agreement, debrief 1's and its own.
  await startPhase(board, "lesson-2", [Ana]);
  await startPhase(board, "final-debrief", [Ana]);
  await addAgreement(board, "Try the same task with 9 + 4 next month", "");
  await waitVisible(Ana.locator(sel("agreements-carried")), true, "the agreements in the final debrief");
  const list = Ana.locator(`${sel("agreements-carried")} ${sel("agreement-item")}`);
  await poll("both agreements on the phone", () => list.count(), (n) => n === 2);
  const items = await list.allTextContents();
  assert.match(items[0], /number talk/);
  assert.match(items[1], /9 \+ 4/);
  await audit(Ana, "phone in the final debrief");

  checkBrowserLog(t, browser);
});

test("next steps: each coach writes their own in the final debrief and keeps them", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: next steps" }, { colorScheme: "light" });
  if (!(await boardHasPhases(t, board))) return;
  const { Ana, Ben } = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben"]);
  await startPhase(board, "debrief-1", [Ana, Ben]);
  assert.equal(await Ana.locator(sel("next-step-text")).isVisible(), false, "no next steps before the final debrief");
  await startPhase(board, "final-debrief", [Ana, Ben]);
  await waitVisible(Ana.locator(sel("next-steps")), true, "the next steps in the final debrief");

  const step = "Run a number talk on making ten with my grade 2 team on Tuesday";
  await Ana.fill(sel("next-step-text"), step);
  await Ana.locator(sel("next-step-add")).tap();
  const mine = (page) => page.locator(sel("next-step-item")).filter({ hasText: "Tuesday" });
  await poll("Ana's next step on her phone", () => mine(Ana).count(), (n) => n === 1);
  await poll("Ana's next step on Ben's phone", () => mine(Ben).count(), (n) => n === 1);
  await poll("Ana's next step saved", () => mine(Ana).getAttribute("data-status"), (v) => v === "synced");
  assert.equal(await mine(Ben).locator(sel("next-step-edit")).isVisible(), false, "Ben cannot edit Ana's step");
  assert.equal(await mine(Ben).locator(sel("next-step-delete")).isVisible(), false, "Ben cannot delete Ana's step");
  assert.match(await text(mine(Ben)), /Ana/);
  // Too long is refused with the reason, not cut.
  await Ben.fill(sel("next-step-text"), "x".repeat(520));
  await waitVisible(Ben.locator(sel("next-step-problem")), true, "why a long next step cannot be saved");
  assert.equal(await Ben.locator(sel("next-step-add")).isDisabled(), true);
  await Ben.fill(sel("next-step-text"), "Share the ten-frame task with the grade 1 teachers");
  await Ben.locator(sel("next-step-add")).tap();
  await poll("both next steps on Ana's phone", () => Ana.locator(sel("next-step-item")).count(), (n) => n === 2);
  await audit(Ana, "phone with next steps");

  // Ana edits hers; Ben sees the change.
  await mine(Ana).locator(sel("next-step-edit")).tap();
  await mine(Ana).locator(sel("next-step-edit-text")).fill(`${step} and Thursday`);
  await mine(Ana).locator(sel("next-step-save")).tap();
  await poll("the edit on Ben's phone", () => text(mine(Ben).locator(sel("next-step-body"))), (v) => v === `${step} and Thursday`);

  // The lab is over: the next steps stay on the phone, after a reload too.
  await Ana.reload();
  await Ana.waitForSelector("body[data-ready='1']", { state: "attached" });
  await poll("the next steps after a reload", () => Ana.locator(sel("next-step-item")).count(), (n) => n === 2);
  await Ana.screenshot({ path: path.join(screenshotDir(t), "phone-next-steps.png"), fullPage: true });

  // Ana deletes hers (two taps), with a few seconds to undo; then it leaves Ben's phone too.
  const del = mine(Ana).locator(sel("next-step-delete"));
  await del.tap();
  await del.tap();
  await waitVisible(Ana.locator(sel("undo-toast")), true, "Ana's undo toast");
  assert.equal(await text(Ana.locator(sel("undo-message"))), "Next step deleted");
  assert.equal(await mine(Ana).count(), 0, "gone from Ana's phone at once");
  await poll("Ana's step gone from Ben's phone", () => mine(Ben).count(), (n) => n === 0);
  assert.equal(await Ben.locator(sel("next-step-item")).count(), 1, "Ben's own step stays");

  checkBrowserLog(t, browser);
});
