// The labs home page `/labs`: the organizer's phone (390x844, touch) and laptop (1280x800) list
// every lab, one running with its phones and notes and one ended with the day the retention
// deletes it; a facilitator's device lists only the lab it signed in to. From the page the
// organizer downloads the research export (JSON), ends a lab and deletes one, each confirmed in
// the page's dialog, and the API agrees; a failed End says why. axe at both sizes, in dark too
// and with the dialog open; no horizontal scroll and no touch target under 44 px on the phone.
// Screenshots: labs.png (laptop; docs/screenshots/labs.png with `npm run screenshots`) and
// labs-phone.png; in plain test runs also labs-phone-dark.png and labs-phone-delete.png.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import {
  ORGANIZER_TOKEN,
  PHONE,
  TEST_TIMEOUT,
  audit,
  checkBrowserLog,
  createLabInApi,
  createLabInUi,
  feedNote,
  open,
  poll,
  postNote,
  sel,
  setUp,
  waitCount,
  waitStatus,
} from "./harness.mjs";
import { joinPhone, screenshotDir, text, waitVisible } from "./scenario.mjs";

const LAPTOP = { viewport: { width: 1280, height: 800 } };

async function apiGet(origin, path, token = ORGANIZER_TOKEN) {
  const res = await fetch(`${origin}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.text();
  return { status: res.status, json: body ? JSON.parse(body) : undefined };
}

async function apiPost(origin, path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${origin}${path}`, { method: "POST", headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const card = (page, labId) => page.locator(`${sel("lab-card")}[data-lab-id="${labId}"]`);

/** The counts and state a card shows. */
async function shown(page, labId) {
  const c = card(page, labId);
  return {
    state: await c.getAttribute("data-state"),
    stateText: await text(c.locator(sel("lab-state"))),
    phones: Number(await c.locator(sel("lab-phones")).getAttribute("data-count")),
    notes: Number(await c.locator(sel("lab-notes")).getAttribute("data-count")),
    phonesText: await text(c.locator(sel("lab-phones"))),
    notesText: await text(c.locator(sel("lab-notes"))),
    deleteAt: (await c.locator(sel("lab-delete-at")).count()) ? await text(c.locator(sel("lab-delete-at"))) : null,
  };
}

/** Nothing wider than the screen, and every visible control a fingertip tall and wide. */
async function checkPhoneLayout(page, label) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${label}: the page scrolls sideways by ${overflow} px`);
  const small = await page.evaluate(() =>
    [...document.querySelectorAll("main a, main button, main summary, dialog[open] button")]
      .filter((el) => el.getClientRects().length > 0)
      .map((el) => ({ el, r: el.getBoundingClientRect() }))
      .filter(({ r }) => r.height < 44 || r.width < 44)
      .map(({ el, r }) => `${el.textContent.trim()} ${Math.round(r.width)}x${Math.round(r.height)}`),
  );
  assert.deepEqual(small, [], `${label}: touch targets under 44 px`);
}

test("the labs home page lists, exports, ends and deletes labs on a phone and a laptop", { timeout: TEST_TIMEOUT * 2 }, async (t) => {
  const { browser, origin } = await setUp(t, { serverArgs: ["--retention", "180d"] });
  const shots = screenshotDir(t);
  // The dark theme and the dialog are looked at in test runs, not kept in docs/.
  const extraShot = (page, name, options = {}) =>
    process.env.LABBOARD_SCREENSHOT_DIR ? undefined : page.screenshot({ path: path.join(shots, name), ...options });

  // The organizer's laptop creates the first lab (and is signed in to it as facilitator).
  const laptop = await (await browser.newContext(LAPTOP, "laptop")).newPage();
  const making = await createLabInUi(laptop, origin, { title: "Making ten", school: "Hillside Elementary", grade: "2", date: "2026-11-23" });
  // Two coaches' phones join it and write three notes.
  const ana = await joinPhone(browser, origin, making.joinCode, "Ana");
  const bo = await joinPhone(browser, origin, making.joinCode, "Bo");
  const notes = [
    [ana, "strategies", "K. counted on from 8 using fingers"],
    [ana, "student-thinking", "L. said ten is two fives"],
    [bo, "teacher-moves", "Teacher asked: how do you know?"],
  ];
  for (const [phone, category, body] of notes) {
    await postNote(phone, category, body);
    await waitStatus(feedNote(phone, body), "synced");
  }

  // A second lab, made and ended through the API, with one phone that joined.
  const area = await createLabInApi(origin, { title: "Area models", school: "Lincoln", grade: "4" });
  await apiPost(origin, "/api/join", { code: area.joinCode, name: "Cy", deviceKey: "device-cy" });
  const ended = await apiPost(origin, `/api/labs/${area.labId}/end`, undefined, ORGANIZER_TOKEN);

  // A facilitator's own laptop signs in with the lab id and key: it lists only that lab.
  const facCtx = await browser.newContext(LAPTOP, "facilitator");
  const fac = await facCtx.newPage();
  await open(fac, `${origin}/`);
  await fac.locator("summary", { hasText: "Open the board of an existing lab" }).click();
  await fac.fill(sel("facilitate-lab-id"), making.labId);
  await fac.fill(sel("facilitate-key"), making.facilitatorKey);
  await fac.click(sel("facilitate-submit"));
  await fac.waitForURL(`**/lab/${making.labId}/board`);
  await open(fac, `${origin}/labs`);
  await waitCount(fac.locator(sel("lab-card")), 1, "the facilitator's one lab");
  assert.equal(await text(fac.locator(sel("lab-title"))), "Making ten");
  assert.equal(await fac.locator(sel("labs-new")).isVisible(), false, "no New lab without the organizer token");
  // Its expired sign-in is renewed with the stored key without asking.
  await fac.evaluate((labId) => {
    const labs = JSON.parse(localStorage.getItem("lb.labs"));
    labs[labId].token = "expired-or-revoked-token";
    localStorage.setItem("lb.labs", JSON.stringify(labs));
  }, making.labId);
  await open(fac, `${origin}/labs`);
  await waitCount(fac.locator(sel("lab-card")), 1, "the facilitator's lab after renewing");
  assert.equal((await shown(fac, making.labId)).state, "active");

  // The organizer's phone.
  // British English, so that days read "4 Dec 2026" whatever this machine's locale is.
  const phone = await (await browser.newContext({ ...PHONE, locale: "en-GB" }, "organizer-phone")).newPage();
  await open(phone, `${origin}/labs#organizer=${encodeURIComponent(ORGANIZER_TOKEN)}`);
  assert.equal(new URL(phone.url()).hash, "", "the organizer token leaves the address bar");
  await waitCount(phone.locator(sel("lab-card")), 2, "every lab on the server");
  // Devices: the organizer's laptop (signed in when it created the lab), two phones, the
  // facilitator's laptop.
  assert.deepEqual(await shown(phone, making.labId), {
    state: "active",
    stateText: "Active",
    phones: 4,
    notes: 3,
    phonesText: "4 phones",
    notesText: "3 notes",
    deleteAt: null,
  });
  const areaShown = await shown(phone, area.labId);
  assert.equal(areaShown.state, "ended");
  assert.match(areaShown.stateText, /^Ended on \d{1,2} [A-Z][a-z]{2,3} \d{4}$/);
  assert.equal(areaShown.phones, 1);
  assert.equal(areaShown.notes, 0);
  const deleteDay = await phone.evaluate(
    (ms) => new Date(ms).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" }),
    ended.endedAt + 180 * 86_400_000,
  );
  assert.equal(areaShown.deleteAt, `Deleted on ${deleteDay}`);
  assert.equal(await card(phone, area.labId).locator(sel("lab-end")).count(), 0, "no End lab on an ended lab");
  assert.equal(await card(phone, making.labId).locator(sel("lab-details")).textContent(), "Hillside Elementary · Grade 2 · 23 Nov 2026");
  await checkPhoneLayout(phone, "the phone");
  await audit(phone, "/labs on the phone");
  await phone.screenshot({ path: path.join(shots, "labs-phone.png"), fullPage: true });
  // The dark theme too.
  await phone.emulateMedia({ colorScheme: "dark" });
  await open(phone, `${origin}/labs`);
  await waitCount(phone.locator(sel("lab-card")), 2, "every lab, dark");
  assert.equal(await phone.evaluate(() => document.documentElement.dataset.theme), "dark");
  await audit(phone, "/labs on the phone, dark");
  await extraShot(phone, "labs-phone-dark.png", { fullPage: true });

  // The laptop: the same list, tidy and audited; the research export downloads.
  await open(laptop, `${origin}/labs`);
  await waitCount(laptop.locator(sel("lab-card")), 2, "every lab on the laptop");
  assert.equal((await shown(laptop, making.labId)).notes, 3);
  const overflow = await laptop.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the laptop page scrolls sideways by ${overflow} px`);
  await audit(laptop, "/labs on the laptop");
  await laptop.screenshot({ path: path.join(shots, "labs.png") });
  // A 1080p screen: the cards stay within the width, nothing scrolls sideways.
  await laptop.setViewportSize({ width: 1920, height: 1080 });
  const wide = await laptop.evaluate(() => ({
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    outside: [...document.querySelectorAll("[data-testid=lab-card] *")].filter((el) => {
      const card = el.closest("[data-testid=lab-card]").getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return r.width > 0 && (r.left < card.left - 0.5 || r.right > card.right + 0.5);
    }).length,
  }));
  assert.deepEqual(wide, { overflow: 0, outside: 0 }, "at 1920x1080");
  await extraShot(laptop, "labs-1080p.png");
  await laptop.setViewportSize(LAPTOP.viewport);
  const exportMenu = card(laptop, making.labId).locator(sel("lab-export"));
  await exportMenu.locator("summary").click();
  await audit(laptop, "/labs on the laptop, Export menu open");
  const [download] = await Promise.all([
    laptop.waitForEvent("download"),
    exportMenu.locator(`${sel("lab-export-item")}[data-format="json"]`).click(),
  ]);
  assert.equal(download.suggestedFilename(), "making-ten-research.json");
  const research = JSON.parse(await readFile(await download.path(), "utf8"));
  assert.equal(research.notes.length, 3);
  assert.deepEqual(research.notes.map((n) => n.text).sort(), notes.map(([, , body]) => body).sort());
  assert.equal(await card(laptop, making.labId).locator(sel("lab-error")).isVisible(), false);
  await poll("the menu closes after the download", () => exportMenu.getAttribute("open"), (v) => v === null);
  // Escape and a click elsewhere close it too.
  await exportMenu.locator("summary").click();
  await laptop.keyboard.press("Escape");
  await poll("Escape closes the menu", () => exportMenu.getAttribute("open"), (v) => v === null);
  await exportMenu.locator("summary").click();
  await laptop.locator("h1").click();
  await poll("a click elsewhere closes the menu", () => exportMenu.getAttribute("open"), (v) => v === null);

  // End "Making ten" from the phone, through the dialog.
  await card(phone, making.labId).locator(sel("lab-end")).tap();
  const dialog = phone.locator(sel("labs-dialog"));
  await waitVisible(dialog, true, "the End dialog");
  assert.match(await text(dialog), /End “Making ten”\?/);
  await checkPhoneLayout(phone, "the phone with the End dialog");
  await audit(phone, "/labs on the phone, End dialog");
  await phone.locator(sel("labs-dialog-confirm")).tap();
  await waitVisible(dialog, false, "the End dialog closes");
  await poll("the card shows the lab ended", () => card(phone, making.labId).getAttribute("data-state"), (s) => s === "ended");
  const afterEnd = await apiGet(origin, `/api/labs/${making.labId}`);
  assert.equal(afterEnd.status, 200);
  assert.equal(afterEnd.json.state, "ended");
  assert.match((await shown(phone, making.labId)).deleteAt ?? "", /^Deleted on /);

  // Delete "Area models": the dialog says plainly that it cannot be undone; Cancel keeps it.
  await card(phone, area.labId).locator(sel("lab-delete")).tap();
  await waitVisible(dialog, true, "the Delete dialog");
  assert.match(await text(dialog), /deleted from the server for good\. This cannot be undone\./);
  await phone.locator(sel("labs-dialog-cancel")).tap();
  await waitVisible(dialog, false, "Cancel closes the dialog");
  assert.equal((await apiGet(origin, `/api/labs/${area.labId}`)).status, 200, "Cancel deletes nothing");
  await card(phone, area.labId).locator(sel("lab-delete")).tap();
  await waitVisible(dialog, true, "the Delete dialog again");
  await audit(phone, "/labs on the phone, Delete dialog");
  await extraShot(phone, "labs-phone-delete.png");
  await phone.locator(sel("labs-dialog-confirm")).tap();
  await waitVisible(dialog, false, "the Delete dialog closes");
  await waitCount(phone.locator(sel("lab-card")), 1, "one lab left");
  assert.equal((await apiGet(origin, `/api/labs/${area.labId}`)).status, 404);

  // A failed action says why, in the dialog: a lab deleted elsewhere cannot be ended.
  const late = await createLabInApi(origin, { title: "Fractions" });
  await open(phone, `${origin}/labs`);
  await waitCount(phone.locator(sel("lab-card")), 2, "the new lab listed");
  const gone = await fetch(`${origin}/api/labs/${late.labId}`, { method: "DELETE", headers: { Authorization: `Bearer ${ORGANIZER_TOKEN}` } });
  assert.equal(gone.status, 204);
  await card(phone, late.labId).locator(sel("lab-end")).tap();
  await waitVisible(dialog, true, "the End dialog of the deleted lab");
  await phone.locator(sel("labs-dialog-confirm")).tap();
  await waitVisible(phone.locator(sel("labs-dialog-error")), true, "why ending failed");
  assert.equal(await text(phone.locator(sel("labs-dialog-error"))), "This lab is no longer on the server.");
  assert.equal(await dialog.isVisible(), true, "the dialog stays open with the reason");
  await phone.locator(sel("labs-dialog-cancel")).tap();
  await waitVisible(dialog, false, "Cancel closes it");

  checkBrowserLog(t, browser);
});

test("a device with no labs gets a friendly empty state", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin } = await setUp(t);
  const page = await (await browser.newContext(PHONE, "empty")).newPage();
  await open(page, `${origin}/labs`);
  await waitVisible(page.locator(sel("labs-empty")), true, "the empty state");
  assert.match(await text(page.locator(sel("labs-empty"))), /No labs here yet/);
  await checkPhoneLayout(page, "the empty phone page");
  await audit(page, "/labs empty on the phone");
  checkBrowserLog(t, browser);
});
