// The phone in a lesson (issue #12, defects 1, 2 and 3), at 390x844 with touch:
// - starting the plan and lesson 1, a time-out called by someone else, and lesson 2 with
//   agreements never move the note box under a thumb;
// - a time-out needs a second tap to be called, and its caller can undo it for a few seconds;
// - a time-out called offline shows as waiting to reach the others (no running timer) and
//   nobody else sees it until the phone is back online;
// - with the on-screen keyboard open (a 390x460 viewport) Send is on screen and tappable in every
//   phase.
// axe runs on the phone in every phase it visits. Needs schema v2 boards (phases); the undo step
// needs a server that lets a caller take back their own time-out (schema v3).

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { PHONE, TEST_TIMEOUT, audit, checkBrowserLog, feedNote, joinByCode, poll, postNote, sel, waitAttr } from "./harness.mjs";
import { boardHasPhases, joinPhone, joinPhones, projectLab, screenshotDir, waitVisible } from "./scenario.mjs";
import { addAgreement, box, callTimeout, reachable, startPhase, text } from "./phone.mjs";

test("the composer never moves; a time-out is deliberate, undoable, and waits while offline", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: phone", school: "Hillside", grade: "2" }, { colorScheme: "light" });
  if (!(await boardHasPhases(t, board))) return;
  const { Ana, Ben } = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben"]);
  const boxes = async () => Promise.all([Ana, Ben].map((p) => box(p.locator(sel("note-text")))));
  const before = await boxes();
  // The note box and the chips are kept, not rebuilt, through everything below.
  await Ana.evaluate(() => {
    document.querySelector("[data-testid=note-text]").dataset.kept = "yes";
    document.querySelector("[data-testid=category-chip]").dataset.kept = "yes";
  });
  await audit(Ana, "phone before the lab starts");

  // Starting the plan and lesson 1 moves nothing.
  await startPhase(board, "plan", [Ana, Ben]);
  assert.deepEqual(await boxes(), before, "the note box stays put when the plan starts");
  await startPhase(board, "lesson-1", [Ana, Ben]);
  await waitVisible(Ana.locator(sel("timeout-call")), true, "the time-out button in lesson 1");
  assert.deepEqual(await boxes(), before, "the note box stays put when lesson 1 starts");
  await audit(Ana, "phone in lesson 1");

  // One tap only arms the button: nothing is called.
  const call = Ana.locator(sel("timeout-call"));
  await call.tap();
  await waitAttr(Ana, "timeout-call", "data-armed", "true");
  assert.match(await text(call), /tap again/i);
  await postNote(Ben, "strategies", "R. made a ten first: 8 + 2 + 3"); // time passes, the board syncs
  await waitAttr(Ana, "timeout-call", "data-armed", "false"); // and the arming runs out
  for (const page of [Ana, Ben, board]) {
    assert.equal(await page.locator(sel("timeout-banner")).isVisible(), false, "one tap called no time-out");
  }

  // Two taps call it: everyone sees it, and the caller can take it back for a few seconds.
  await callTimeout(Ana);
  await waitVisible(Ana.locator(sel("timeout-undo")), true, "Undo for the caller");
  for (const page of [Ben, board]) await waitVisible(page.locator(sel("timeout-banner")), true, "the time-out banner");
  assert.equal(await Ben.locator(sel("timeout-undo")).isVisible(), false, "only the caller may undo");
  // Undo takes it back everywhere, as if it was never called.
  await Ana.locator(sel("timeout-undo")).tap();
  for (const page of [Ana, Ben, board]) await waitVisible(page.locator(sel("timeout-banner")), false, "the undone time-out");
  await waitVisible(Ana.locator(sel("timeout-call")), true, "the time-out button after the undo");

  // Offline, a time-out waits on the phone like a note: no timer, not on the others' screens.
  await Ana.context().setOffline(true);
  await waitAttr(Ana, "connection", "data-state", "offline");
  await callTimeout(Ana);
  await waitAttr(Ana, "timeout-banner", "data-status", "waiting");
  assert.match(await text(Ana.locator(sel("timeout-caller"))), /waiting to reach the others/);
  assert.equal(await Ana.locator(sel("timeout-timer")).isVisible(), false, "no running timer while it waits");
  await audit(Ana, "phone with a time-out waiting offline");
  await postNote(Ben, "teacher-moves", "Teacher paused the class and asked R. to explain"); // a barrier
  for (const page of [Ben, board]) {
    assert.equal(await page.locator(sel("timeout-banner")).isVisible(), false, "the offline time-out is not on the others' screens");
  }
  await Ana.context().setOffline(false);
  await waitAttr(Ana, "connection", "data-state", "online");
  await waitAttr(Ana, "timeout-banner", "data-status", "synced");
  await waitVisible(Ana.locator(sel("timeout-timer")), true, "the timer once it reached the server");
  for (const page of [Ben, board]) await waitVisible(page.locator(sel("timeout-banner")), true, "the time-out once Ana is back online");
  assert.deepEqual(await boxes(), before, "the note box stays put while a time-out runs");
  await poll("the timer", () => text(Ben.locator(sel("timeout-timer"))), (v) => /^\d\d:\d\d$/.test(v));
  assert.match(await text(Ben.locator(sel("timeout-caller"))), /called by Ana/);
  await waitAttr(Ben, "timeout-banner", "data-status", "synced");
  await waitVisible(Ana.locator(sel("timeout-undo")), false, "Undo only for a few seconds");
  await audit(Ben, "phone during a time-out");
  // The README's picture of the phone in a lesson: Ben's phone during Ana's time-out.
  await postNote(Ana, "student-thinking", "R. said 8 + 5 is 13 because 8 needs 2 more to make 10");
  await Ben.evaluate(() => window.scrollTo(0, 0));
  await Ben.screenshot({ path: path.join(screenshotDir(t), "phone-lesson.png") });

  // Ending it moves nothing either.
  await Ana.locator(sel("timeout-end")).tap();
  for (const page of [Ana, Ben, board]) await waitVisible(page.locator(sel("timeout-banner")), false, "the ended time-out");
  assert.deepEqual(await boxes(), before, "the note box stays put when the time-out ends");

  // Debrief 1 agrees on something; lesson 2 shows it on the phones, below the note box.
  await startPhase(board, "debrief-1", [Ana, Ben]);
  await addAgreement(board, "Open with a number talk on making ten", "Kim");
  await startPhase(board, "lesson-2", [Ana, Ben]);
  await waitVisible(Ana.locator(sel("agreements-carried")), true, "debrief 1's agreement in lesson 2");
  assert.deepEqual(await boxes(), before, "the note box stays put in lesson 2 with agreements");
  assert.equal(await Ana.locator(sel("note-text")).getAttribute("data-kept"), "yes", "the same note box throughout");
  assert.equal(await Ana.locator(sel("category-chip")).first().getAttribute("data-kept"), "yes", "the same chips throughout");
  await audit(Ana, "phone in lesson 2");

  checkBrowserLog(t, browser);
});

test("with the keyboard open (390x460), Send is on screen in every phase", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: keyboard" }, { colorScheme: "light" });
  if (!(await boardHasPhases(t, board))) return;
  const phone = await joinPhone(browser, origin, lab.joinCode, "Ana");
  const other = await joinPhone(browser, origin, lab.joinCode, "Ben");
  // The on-screen keyboard takes about half of the 844 px: what is left is 390x460.
  await phone.setViewportSize({ width: 390, height: 460 });
  const check = async (where) => {
    await phone.evaluate(() => window.scrollTo(0, 0));
    await phone.locator(sel("note-text")).tap();
    await phone.locator(sel("note-text")).fill(`A note typed ${where}`);
    await poll(`Send reachable ${where}`, () => reachable(phone, phone.locator(sel("note-send"))), (v) => v === true);
    assert.equal(await phone.locator(sel("note-send")).isEnabled(), true, `Send enabled ${where}`);
    await audit(phone, `phone with the keyboard open ${where}`);
  };
  await check("before the lab starts");
  await startPhase(board, "plan", [phone]);
  await check("in the plan");
  await startPhase(board, "lesson-1", [phone]);
  await check("in lesson 1");
  await callTimeout(other);
  await waitVisible(phone.locator(sel("timeout-banner")), true, "Ben's time-out on Ana's phone");
  await check("during a time-out");
  await other.locator(sel("timeout-end")).tap();
  await startPhase(board, "debrief-1", [phone]);
  await addAgreement(board, "Give every table two ten-frames", "Ana");
  await check("in debrief 1");
  await startPhase(board, "lesson-2", [phone]);
  await check("in lesson 2, with what we agreed to try");
  await startPhase(board, "final-debrief", [phone]);
  await check("in the final debrief");
  // And Send works from there: the note is posted.
  await phone.locator(sel("note-send")).tap();
  await poll("the note in the feed", () => phone.locator(sel("feed-note")).count(), (n) => n === 1);

  // A real keyboard (Chrome on Android) leaves the layout viewport at 844 px and shrinks only the
  // visual viewport: a phone whose visualViewport says a 384 px keyboard covers the bottom keeps
  // Send above it.
  const ctx = await browser.newContext(PHONE, "phone-keyboard");
  await ctx.addInitScript(() => {
    const vv = new EventTarget();
    let covered = 0;
    Object.defineProperties(vv, {
      width: { get: () => window.innerWidth },
      height: { get: () => window.innerHeight - covered },
      offsetTop: { value: 0 },
      offsetLeft: { value: 0 },
      pageTop: { get: () => window.scrollY },
      pageLeft: { value: 0 },
      scale: { value: 1 },
    });
    Object.defineProperty(window, "visualViewport", { value: vv, configurable: true });
    window.openKeyboard = (px) => {
      covered = px;
      vv.dispatchEvent(new Event("resize"));
    };
  });
  const kb = await ctx.newPage();
  await joinByCode(kb, origin, lab.joinCode, "Cy");
  await kb.evaluate(() => window.scrollTo(0, 0));
  await kb.locator(sel("note-text")).tap();
  await kb.locator(sel("note-text")).fill("Typed with the keyboard open");
  await kb.evaluate(() => window.openKeyboard(384));
  await poll("Send above a 384 px keyboard", () => reachable(kb, kb.locator(sel("note-send"))), (v) => v === true);
  await kb.locator(sel("note-send")).tap();
  await poll("Cy's note in her feed", () => feedNote(kb, "Typed with the keyboard open").count(), (n) => n === 1);

  checkBrowserLog(t, browser);
});

test("the phone passes axe in the dark theme: lesson, time-outs, picks, signal, next steps", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: dark" }, { colorScheme: "dark" });
  if (!(await boardHasPhases(t, board))) return;
  const phone = await joinPhone(browser, origin, lab.joinCode, "Ana", { colorScheme: "dark" });
  assert.equal(await phone.locator("html").getAttribute("data-theme"), "dark");
  await startPhase(board, "lesson-1", [phone]);
  await postNote(phone, "student-thinking", "T. counted on from 8 on her fingers");
  await audit(phone, "dark phone in lesson 1");
  await callTimeout(phone);
  await waitAttr(phone, "timeout-banner", "data-status", "synced");
  await audit(phone, "dark phone during its own time-out");
  await phone.locator(sel("timeout-end")).tap();
  await waitVisible(phone.locator(sel("timeout-banner")), false, "the ended time-out");
  await phone.context().setOffline(true);
  await waitAttr(phone, "connection", "data-state", "offline");
  await callTimeout(phone);
  await waitAttr(phone, "timeout-banner", "data-status", "waiting");
  await audit(phone, "dark phone with a waiting time-out");
  await phone.context().setOffline(false);
  await waitAttr(phone, "timeout-banner", "data-status", "synced");
  await phone.locator(sel("timeout-end")).tap();
  await startPhase(board, "debrief-1", [phone]);
  await phone.locator(sel("note-pick")).first().tap();
  await waitAttr(phone, "note-pick", "aria-pressed", "true");
  await addAgreement(board, "Open with a number talk on making ten", "Kim");
  await waitVisible(phone.locator(sel("agreement-signal")), true, "the new-agreement signal");
  await audit(phone, "dark phone in debrief 1 with a pick and a new agreement");
  await startPhase(board, "final-debrief", [phone]);
  await phone.fill(sel("next-step-text"), "Try a number talk with my grade 2 team");
  await phone.locator(sel("next-step-add")).tap();
  await waitVisible(phone.locator(sel("next-step-item")), true, "the next step");
  await audit(phone, "dark phone in the final debrief");
  await phone.screenshot({ path: path.join(screenshotDir(t), "phone-dark-final.png") });

  checkBrowserLog(t, browser);
});
