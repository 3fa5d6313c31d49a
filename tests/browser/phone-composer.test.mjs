// The phone's composer and feed (issue #12, defects 8, 10 and 12), at 390x844 with touch:
// - a 5,000-character paste is kept whole: a live counter, a message that says why and by how
//   much, and Send refuses until it fits; a note at the limit is stored whole;
// - "Maria Lopez said…" is not sent by Send: one tap replaces the name with "M.L.", or the coach
//   says "Send anyway";
// - a coach cannot "I saw that too" their own note;
// - a wrong join code gets a friendly sentence, not the server's lowercase text;
// - in landscape the time-out control and the agreements leave the note box on the first screen;
// - on a tablet (1180x820) the note box and Send are on the first screen.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { PHONE, TABLET, TEST_TIMEOUT, audit, checkBrowserLog, feedNote, open, poll, postNote, sel } from "./harness.mjs";
import { boardHasPhases, joinPhones, newPhone, projectLab, screenshotDir, waitVisible } from "./scenario.mjs";
import { addAgreement, box, reachable, startPhase, text } from "./phone.mjs";

test("long notes, full names, own notes and a wrong code on the phone", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten: composer" }, { colorScheme: "light" });
  const { Ana, Ben } = await joinPhones(browser, origin, lab.joinCode, ["Ana", "Ben"]);
  const shots = screenshotDir(t);
  const box_ = Ana.locator(sel("note-text"));
  const send = Ana.locator(sel("note-send"));

  // A 5,000-character paste stays whole, and Send says no until it fits.
  const long = "K. counted on from eight. ".repeat(200).slice(0, 5000);
  await box_.fill(long);
  assert.equal((await box_.inputValue()).length, 5000, "nothing is cut");
  await waitVisible(Ana.locator(sel("note-counter")), true, "the counter");
  assert.equal(await text(Ana.locator(sel("note-counter"))), "5,000 / 2,000");
  await waitVisible(Ana.locator(sel("note-too-long")), true, "why it cannot be sent");
  assert.match(await text(Ana.locator(sel("note-too-long"))), /up to 2,000 characters.*by 3,000/);
  assert.equal(await send.isDisabled(), true, "Send refuses a note that is too long");
  await audit(Ana, "phone with a note too long");
  await Ana.screenshot({ path: path.join(shots, "phone-too-long.png") });
  // Cut to the limit by the coach: it goes, whole.
  const fits = long.slice(0, 2000).trim();
  await box_.fill(fits);
  await waitVisible(Ana.locator(sel("note-too-long")), false, "the message once it fits");
  assert.equal(await text(Ana.locator(sel("note-counter"))), `${fits.length.toLocaleString("en-US")} / 2,000`);
  await send.tap();
  await poll("the long note stored whole", () => Ana.locator(sel("note-body")).first().textContent(), (v) => v === fits);
  await waitVisible(Ana.locator(sel("note-counter")), false, "the counter for an empty box");

  // A child's full name: Send does not send; one tap puts initials in.
  await box_.fill("Maria Lopez said 8 + 5 is 13 because 8 + 2 is 10");
  await waitVisible(Ana.locator(sel("name-warning")), true, "the full-name warning");
  assert.match(await text(Ana.locator(sel("name-warning"))), /Maria Lopez/);
  assert.equal(await send.isDisabled(), true, "Send does not just go through");
  assert.equal(await text(Ana.locator(sel("name-initials"))), "Use M.L.");
  await audit(Ana, "phone with the full-name warning");
  await Ana.screenshot({ path: path.join(shots, "phone-full-name.png") });
  await Ana.locator(sel("name-initials")).tap();
  assert.equal(await box_.inputValue(), "M.L. said 8 + 5 is 13 because 8 + 2 is 10");
  await waitVisible(Ana.locator(sel("name-warning")), false, "the warning once the name is gone");
  await postNote(Ana, "student-thinking", "M.L. said 8 + 5 is 13 because 8 + 2 is 10");
  // Or, deliberately, as typed.
  const named = "Jon Park is the teacher's name for the class pet";
  await box_.fill(named);
  await waitVisible(Ana.locator(sel("name-warning")), true, "the full-name warning");
  await Ana.locator(sel("name-send-anyway")).tap();
  await poll("the note sent anyway", () => feedNote(Ana, named).count(), (n) => n === 1);
  assert.equal(await box_.inputValue(), "", "the box is emptied");

  // "I saw that too" is for other people's notes.
  const mine = "M.L. said 8 + 5 is 13 because 8 + 2 is 10";
  await poll("Ana's note on Ben's phone", () => feedNote(Ben, mine).count(), (n) => n === 1);
  assert.equal(await feedNote(Ana, mine).locator(sel("note-react")).isVisible(), false, "no reaction to one's own note");
  // Cards are kept and updated in place: mark this one, and it is the same element afterwards.
  await feedNote(Ben, mine).evaluate((el) => (el.dataset.kept = "yes"));
  await feedNote(Ben, mine).locator(sel("note-react")).tap();
  await waitVisible(feedNote(Ana, mine).locator(sel("note-seen")), true, "how many saw it, on the author's phone");
  assert.equal(await text(feedNote(Ana, mine).locator(sel("note-seen"))), "1 saw it too");
  await postNote(Ana, "strategies", "R. made a ten with 8 + 2 and then added 3");
  await poll("Ana's newer note on Ben's phone", () => Ben.locator(sel("feed-note")).first().textContent(), (v) => /made a ten/.test(v));
  assert.equal(await feedNote(Ben, mine).getAttribute("data-kept"), "yes", "the card was not rebuilt by a reaction or a new note");
  await audit(Ben, "phone feed");

  // On a tablet (1180x820) the same page: the note box and Send on the first screen.
  await Ben.setViewportSize(TABLET.viewport);
  await Ben.evaluate(() => window.scrollTo(0, 0));
  await Ben.locator(sel("note-text")).fill("On the tablet: T. drew 13 as a ten and 3 ones");
  assert.equal(await reachable(Ben, Ben.locator(sel("note-send"))), true, "Send on a tablet's first screen");
  await audit(Ben, "phone page on a tablet");
  await Ben.screenshot({ path: path.join(shots, "phone-tablet.png") });

  // A wrong code on the join page, in words.
  const stranger = await newPhone(browser, "stranger");
  await open(stranger, `${origin}/`);
  await stranger.fill(sel("join-code"), "ZZZ234");
  await stranger.fill(sel("join-name"), "Cy");
  await stranger.locator(sel("join-submit")).tap();
  await waitVisible(stranger.locator(sel("join-error")), true, "the join error");
  assert.equal(
    await text(stranger.locator(sel("join-error"))),
    "No lab has the code ZZZ234. Check the code on the board (it can change), or ask the facilitator for it.",
  );
  await audit(stranger, "join page with a wrong code");

  // Landscape: in lesson 2, with agreements, the note box is on the first screen.
  if (await boardHasPhases(t, board)) {
    await startPhase(board, "debrief-1", [Ana]);
    await addAgreement(board, "Open with a number talk on making ten", "Kim");
    await addAgreement(board, "Give every table two ten-frames and counters", "Ana");
    await startPhase(board, "lesson-2", [Ana]);
    await waitVisible(Ana.locator(sel("agreements-carried")), true, "the agreements in lesson 2");
    await Ana.setViewportSize({ width: PHONE.viewport.height, height: PHONE.viewport.width });
    await Ana.evaluate(() => window.scrollTo(0, 0));
    const note = await box(box_);
    assert.ok(note.y + 80 <= PHONE.viewport.width, `the note box starts on the first screen (at ${note.y} px of ${PHONE.viewport.width})`);
    const strip = await box(Ana.locator(sel("run-strip")));
    assert.ok(strip.height <= 100, `the time-out strip is ${strip.height} px high`);
    const agreements = await box(Ana.locator(sel("agreements-carried")));
    assert.ok(agreements.y >= note.y + note.height, "the agreements come after the note box");
    await audit(Ana, "phone in landscape, lesson 2");
    await Ana.screenshot({ path: path.join(shots, "phone-landscape.png") });
  }

  checkBrowserLog(t, browser);
});
