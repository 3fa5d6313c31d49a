// Scenario 1: a facilitator creates a lab in /new and projects the board; three phones join
// (by code on /, and by the join link /j/<code>) and post notes in different categories; the
// projector shows every note live in its category's column, once, and counts the people.
// Scenario 4 uses the same lab: screenshots of a phone and of the board (light and dark).
// Last, a phone leaves and the board stops counting it.
//
// The screenshots go to a temp dir that is removed afterwards (the run still checks that they
// are taken), unless LABBOARD_SCREENSHOT_DIR names a dir (relative to the repo root):
// `npm run screenshots` writes docs/screenshots/{phone,board,board-dark}.png.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  TEST_TIMEOUT,
  CATEGORIES,
  PROJECTOR,
  boardNote,
  checkBrowserLog,
  createLabAndOpenBoard,
  feedNote,
  joinByCode,
  joinByLink,
  numberIn,
  postNote,
  sel,
  setUp,
  waitAttr,
  waitCount,
  waitNumber,
  waitStatus,
} from "./harness.mjs";
import { newPhone, screenshotDir } from "./scenario.mjs";

const NOTES = [
  ["Ana", "student-thinking", "T. counted by 2s, then regrouped into tens"],
  ["Ben", "strategies", "M. drew ten-frames but lost track at 17"],
  ["Chloe", "teacher-moves", "Teacher paused and asked: “How do you know it's 20?”"],
  ["Ana", "wonderings", "Would a number line help J. see the jump from 17 to 20?"],
  ["Ben", "student-thinking", "R.: “eight needs two more to be ten, so 8 + 5 is 13”"],
  ["Chloe", "next-steps", "Lesson 2: launch with a quick image of two ten-frames"],
  ["Ana", "strategies", "K. used doubles: 6 + 6, then one more for 6 + 7"],
];

// Shared by the tests of this file, in order; each later test needs the earlier ones.
let world;
let board;
let lab;
const phones = {};
let done = 0;

let tearDown;
before(async () => {
  world = await setUp(
    { after: (fn) => (tearDown = fn) },
    { firstContextOptions: { ...PROJECTOR, colorScheme: "light" } },
  );
});
after(() => tearDown?.());

function needs(t, step) {
  if (done < step) t.skip("an earlier test of this file failed");
  return done >= step;
}

test("phones join a lab and their notes appear live on the projector", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin } = world;

  // The facilitator's laptop, plugged into the projector: create the lab, open its board.
  board = await browser.first.newPage();
  lab = await createLabAndOpenBoard(board, origin, {
    title: "Making ten: grouping to add within 20",
    school: "Hillside Elementary",
    grade: "2",
    date: "2026-11-23",
  });
  assert.match(lab.joinCode, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/, "join code shown after creation");
  assert.match(lab.joinUrl, new RegExp(`/j/${lab.joinCode}$`), "join link ends in /j/<code>");
  assert.match(lab.facilitatorKey, /\S{8,}/, "facilitator key shown once");
  assert.equal(lab.boardHref, `/lab/${lab.labId}/board`);

  // The board shows the code to type, a QR code, the five default columns.
  await board.locator(sel("board-join-code")).waitFor();
  const shownCode = ((await board.textContent(sel("board-join-code"))) ?? "").replace(/[\s-]/g, "");
  assert.equal(shownCode.toUpperCase(), lab.joinCode, "board shows the join code");
  assert.equal(await board.locator(`${sel("board-qr")} svg, svg${sel("board-qr")}`).count(), 1, "board shows a QR svg");
  for (const category of CATEGORIES) {
    await waitCount(board.locator(`${sel("board-column")}[data-category="${category}"]`), 1, `${category} column`);
  }

  // Three coaches, each on their own phone (isolated contexts: own storage, own worker).
  for (const name of ["Ana", "Ben", "Chloe"]) {
    phones[name] = await newPhone(browser, `phone-${name}`, { colorScheme: "light" });
  }
  await joinByCode(phones.Ana, origin, lab.joinCode, "Ana");
  // Codes are case-insensitive: Ben types it in lower case.
  await joinByCode(phones.Ben, origin, lab.joinCode.toLowerCase(), "Ben");
  const prefilled = await joinByLink(phones.Chloe, origin, lab.joinUrl, "Chloe");
  assert.equal(prefilled.replace(/[\s-]/g, "").toUpperCase(), lab.joinCode, "join link fills in the code");

  for (const page of Object.values(phones)) await waitAttr(page, "connection", "data-state", "online");

  const ids = new Set();
  for (const [name, category, text] of NOTES) {
    const { id } = await postNote(phones[name], category, text);
    assert.ok(id, `feed note for "${text}" has a data-note-id`);
    ids.add(id);
    // Live: it arrives on the projector while the phones keep working, in its own column.
    await waitCount(boardNote(board, category, text), 1, `"${text}" in the ${category} column`);
  }
  assert.equal(ids.size, NOTES.length, "every note has its own id");

  // Every phone's feed holds everyone's notes, each once, all acknowledged by the server.
  for (const [name, page] of Object.entries(phones)) {
    for (const [, , text] of NOTES) {
      await waitCount(feedNote(page, text), 1, `"${text}" in ${name}'s feed`);
    }
    await waitStatus(page.locator(sel("feed-note")), "synced", NOTES.length);
    await waitNumber(page, "pending-count", `${name}'s pending count 0`, (n) => n === 0);
  }

  // Each note sits in exactly one column of the board: its own.
  await waitCount(board.locator(sel("board-note")), NOTES.length, "board notes in all");
  for (const [, category, text] of NOTES) {
    const column = await boardNote(board, category, text).evaluate(
      (el) => el.closest("[data-testid=board-column]")?.getAttribute("data-category"),
    );
    assert.equal(column, category, `"${text}" is in the ${category} column`);
  }

  // Presence: the three phones are connected (the board counts the others, not itself).
  const present = await waitNumber(board, "presence-count", "presence count ≥ 3", (n) => n >= 3);
  t.diagnostic(`presence count shown on the board: ${present}`);

  checkBrowserLog(t, browser);
  done = 1;
});

function isPng(file) {
  const bytes = readFileSync(file);
  return bytes.length > 1000 && bytes.subarray(1, 4).toString("latin1") === "PNG";
}

test("screenshots of a phone and of the board, light and dark", { timeout: TEST_TIMEOUT }, async (t) => {
  if (!needs(t, 1)) return;
  const dir = screenshotDir(t);
  const shots = {
    phone: path.join(dir, "phone.png"),
    board: path.join(dir, "board.png"),
    boardDark: path.join(dir, "board-dark.png"),
  };

  // Ana starts her next note: a category picked, a few words typed. (A click, not a tap: the
  // emulated tap highlight would stay painted on the chip in the picture.)
  const phone = phones.Ana;
  await phone.locator(`${sel("category-chip")}[data-category="student-thinking"]`).click();
  await phone.fill(sel("note-text"), "J. wrote 17 + 3 = 20 and drew");
  await phone.evaluate(() => document.activeElement?.blur());
  await phone.evaluate(() => window.scrollTo(0, 0));
  await phone.screenshot({ path: shots.phone });

  // Light first (the context asks for light), then the theme toggle switches to dark.
  const theme = () => board.evaluate(() => document.documentElement.dataset.theme);
  const background = () =>
    board.evaluate(() =>
      [document.documentElement, document.body].map((el) => getComputedStyle(el).backgroundColor).join(" "),
    );
  assert.equal(await theme(), "light", "the board follows the system's light preference");
  const light = await background();
  // The picture shows the board at rest: new cards flash for a few seconds as they arrive.
  await board.locator(".board-note.is-new").first().waitFor({ state: "detached" });
  await board.screenshot({ path: shots.board });
  await board.locator(sel("theme-toggle")).click();
  await board.waitForFunction(() => document.documentElement.dataset.theme === "dark");
  assert.notEqual(await background(), light, "the dark theme changes the page background");
  await board.screenshot({ path: shots.boardDark });

  // The choice sticks across a reload of the board.
  await board.reload();
  await board.waitForSelector("body[data-ready='1']", { state: "attached" });
  assert.equal(await theme(), "dark", "the board keeps the dark theme after a reload");
  await board.locator(sel("theme-toggle")).click();
  await board.waitForFunction(() => document.documentElement.dataset.theme === "light");
  for (const [, category, text] of NOTES) {
    await waitCount(boardNote(board, category, text), 1, `"${text}" on the reloaded board`);
  }

  for (const file of Object.values(shots)) assert.ok(isPng(file), `${file} is a PNG`);
  t.diagnostic(`screenshots in ${dir}`);
  checkBrowserLog(t, world.browser);
  done = 2;
});

test("a phone that leaves is no longer counted on the board", { timeout: TEST_TIMEOUT }, async (t) => {
  if (!needs(t, 2)) return;
  const counted = await waitNumber(board, "presence-count", "presence count ≥ 3", (n) => n >= 3);
  // At once when its page says goodbye, at the latest when the 30 s presence window has passed.
  await phones.Chloe.context().close();
  await waitNumber(board, "presence-count", "presence count to drop", (n) => n === counted - 1, 40_000);
  t.diagnostic(`presence count after one phone left: ${await numberIn(board, "presence-count")}`);
  checkBrowserLog(t, world.browser);
});
