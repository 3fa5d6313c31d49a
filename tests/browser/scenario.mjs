// Set-up shared by the scenarios: a projector board on a fresh lab, phones joined to it, the
// schema v2 check, the screenshot dir, and small waits. Built on harness.mjs; everything started
// here is torn down by `setUp`'s `t.after` (browser contexts close with the browser).

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  PHONE,
  PROJECTOR,
  REPO_ROOT,
  createLabAndOpenBoard,
  joinByCode,
  poll,
  sel,
  setUp,
  waitAttr,
} from "./harness.mjs";

/**
 * The facilitator's projector: a server and a browser (`setUp`, torn down by `t.after`), a lab
 * created in `/new` and its board opened in a page of the first (projector-sized) context.
 * Returns `{ server, browser, origin, board, lab }`.
 */
export async function projectLab(t, lab, { colorScheme, serverArgs } = {}) {
  const firstContextOptions = colorScheme ? { ...PROJECTOR, colorScheme } : PROJECTOR;
  const world = await setUp(t, { serverArgs, firstContextOptions });
  const board = await world.browser.first.newPage();
  const created = await createLabAndOpenBoard(board, world.origin, lab);
  return { ...world, board, lab: created };
}

/**
 * Whether the board shows a phase bar (within 5 s): servers that still create schema v1 boards
 * have none. When not, skips `t` with `reason` and returns false.
 */
export async function boardHasPhases(t, board, reason = "this labboard creates schema v1 boards (no `phases` map)") {
  const hasPhases = await board
    .locator(sel("phase-bar"))
    .waitFor({ state: "visible", timeout: 5_000 })
    .then(() => true)
    .catch(() => false);
  if (!hasPhases) t.skip(reason);
  return hasPhases;
}

/** A page in a new, isolated phone context (own storage, service worker, IndexedDB). */
export async function newPhone(browser, label, { colorScheme } = {}) {
  const ctx = await browser.newContext(colorScheme ? { ...PHONE, colorScheme } : PHONE, label);
  return ctx.newPage();
}

/**
 * A phone that joins the lab by code as `name` and waits until it is online. Returns its page
 * (its context is `page.context()`).
 */
export async function joinPhone(browser, origin, joinCode, name, { colorScheme, label = `phone-${name}` } = {}) {
  const page = await newPhone(browser, label, { colorScheme });
  await joinByCode(page, origin, joinCode, name);
  await waitAttr(page, "connection", "data-state", "online");
  return page;
}

/** `joinPhone` for each name in turn; returns `{ [name]: page }`. */
export async function joinPhones(browser, origin, joinCode, names, colorSchemeOf = () => "light") {
  const phones = {};
  for (const name of names) {
    phones[name] = await joinPhone(browser, origin, joinCode, name, { colorScheme: colorSchemeOf(name) });
  }
  return phones;
}

/**
 * Where screenshots go: LABBOARD_SCREENSHOT_DIR (relative to the repo root) when set, else a
 * temp dir removed when `t` ends.
 */
export function screenshotDir(t) {
  let dir = process.env.LABBOARD_SCREENSHOT_DIR;
  if (dir) {
    dir = path.resolve(REPO_ROOT, dir);
    mkdirSync(dir, { recursive: true });
    return dir;
  }
  dir = mkdtempSync(path.join(tmpdir(), "labboard-screenshots-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Waits until `locator` is visible (true) or hidden/absent (false); bounded by WAIT. */
export async function waitVisible(locator, visible, what) {
  await poll(`${what} ${visible ? "visible" : "hidden"}`, () => locator.isVisible(), (v) => v === visible);
}

/** A locator's trimmed text. */
export const text = async (locator) => ((await locator.textContent()) ?? "").trim();
