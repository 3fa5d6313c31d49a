// Harness for Labboard's browser tests: the real `labboard` binary on 127.0.0.1 with a fresh
// data dir, and Debian's headless Chromium driven by playwright-core with a fresh profile.
// Everything a test starts is stopped, and every temp dir removed, when the test ends (also when
// it fails, and as a last resort when the Node process exits).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ORGANIZER_TOKEN = "browser-test-organizer-token-0123456789";
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/** Bounds for every wait, in ms: no wait in these tests is unbounded. */
export const WAIT = 15_000;
/** A last bound on a whole test (node:test's `timeout`), should a wait escape the ones above. */
export const TEST_TIMEOUT = 120_000;
const SERVER_START_WAIT = 15_000;

export const CATEGORIES = [
  "student-thinking",
  "strategies",
  "teacher-moves",
  "wonderings",
  "next-steps",
];

export const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  // Chromium on an Android phone: the engine these tests really run.
  userAgent:
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) " +
    "Chrome/156.0.0.0 Mobile Safari/537.36",
};
export const PROJECTOR = { viewport: { width: 1920, height: 1080 } };

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Nothing may leave the machine: names other than localhost do not resolve.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
];

// Last-resort cleanup if a test process dies without running its hooks.
const liveChildren = new Set();
const liveDirs = new Set();
// A signal would end the process without "exit" handlers; turn it into an exit.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1)));
}
process.on("exit", () => {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
});

function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  liveDirs.add(dir);
  return dir;
}

function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  liveDirs.delete(dir);
}

export function labboardBin() {
  return process.env.LABBOARD_BIN || path.join(REPO_ROOT, "target", "debug", "labboard");
}

/**
 * Starts `labboard` on 127.0.0.1:0 with a fresh data dir. Resolves to
 * `{ origin, port, dataDir, stderr(), stop() }` once it printed its address.
 */
export async function startServer(extraArgs = []) {
  const bin = labboardBin();
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} is missing: build it with \`cargo build -p labboard\` (after \`npm ci && npm run build\` ` +
        `in web-client/), or point LABBOARD_BIN at a labboard binary`,
    );
  }
  const dataDir = tempDir("labboard-browser-data-");
  // The token goes in the environment: a flag would show in the process list.
  const env = { ...process.env, LABBOARD_ADMIN_TOKEN: ORGANIZER_TOKEN };
  delete env.LABBOARD_ADMIN_TOKEN_FILE;
  const child = spawn(
    bin,
    [
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--log",
      "warn",
      ...extraArgs,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env },
  );
  liveChildren.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    liveChildren.delete(child);
    removeDir(dataDir);
  };

  const lines = createInterface({ input: child.stdout });
  try {
    const origin = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`labboard printed no address within ${SERVER_START_WAIT} ms`)),
        SERVER_START_WAIT,
      );
      lines.on("line", (line) => {
        const match = /^labboard listening on (http:\/\/127\.0\.0\.1:\d+)\s*$/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`labboard exited (code ${code}, signal ${signal}) before printing its address`));
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    // Keep draining stdout so the child never blocks on a full pipe.
    lines.on("line", () => {});
    return { origin, port: Number(new URL(origin).port), dataDir, stderr: () => stderr, stop };
  } catch (err) {
    await stop();
    err.message += stderr ? `\nlabboard stderr:\n${stderr}` : "";
    throw err;
  }
}

/**
 * Launches headless Chromium with a fresh user-data dir. The persistent context it opens is
 * `browser.first`; `browser.newContext(options)` makes isolated ones (own storage, service
 * workers, IndexedDB). Every page of every context is watched: requests to anything but
 * 127.0.0.1/localhost, uncaught page errors and console errors are recorded.
 */
export async function launchBrowser(firstContextOptions = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}. The project's test command installs it ` +
        "(`apt-get install -y chromium`); install it that way, or set CHROMIUM_BIN to a Chromium binary.",
    );
  }
  const profileDir = tempDir("labboard-browser-profile-");
  const log = { foreignRequests: [], pageErrors: [], consoleErrors: [] };
  let first;
  try {
    first = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ...firstContextOptions,
    });
  } catch (err) {
    removeDir(profileDir);
    throw err;
  }
  const contexts = [first];
  watch(first, "first", log);

  const browser = {
    first,
    log,
    async newContext(options = {}, label = `context${contexts.length}`) {
      const ctx = await first.browser().newContext(options);
      contexts.push(ctx);
      watch(ctx, label, log);
      return ctx;
    },
    async close() {
      for (const ctx of contexts.slice(1).reverse()) {
        await ctx.close().catch(() => {});
      }
      await first.close().catch(() => {});
      removeDir(profileDir);
    },
  };
  return browser;
}

function watch(ctx, label, log) {
  ctx.setDefaultTimeout(WAIT);
  ctx.setDefaultNavigationTimeout(WAIT);
  ctx.on("request", (request) => {
    const url = request.url();
    if (!isLocal(url)) log.foreignRequests.push(`${label}: ${url}`);
  });
  const watchPage = (page) => {
    page.on("pageerror", (err) => log.pageErrors.push(`${label} ${page.url()}: ${err.stack || err}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") log.consoleErrors.push(`${label} ${page.url()}: ${redact(msg.text())}`);
    });
  };
  ctx.pages().forEach(watchPage);
  ctx.on("page", watchPage);
}

/** Sync URLs carry tokens; keep them out of test logs. */
function redact(text) {
  return text.replace(/token=[^&\s'"]+/g, "token=…");
}

function isLocal(url) {
  if (!/^(https?|wss?):/.test(url)) return true; // data:, blob:, about:, chrome-extension: …
  const host = new URL(url).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]";
}

/**
 * A test's world: a server and a browser, torn down by `t.after` whatever happens (`t` is a
 * test context, or any `{ after(fn) }` that runs `fn` at the end, for a world shared by the
 * tests of one file).
 * `serverArgs` go to labboard; `firstContextOptions` to the persistent context.
 */
export async function setUp(t, { serverArgs = [], firstContextOptions } = {}) {
  const server = await startServer(serverArgs);
  let browser;
  try {
    browser = await launchBrowser(firstContextOptions);
  } catch (err) {
    await server.stop();
    throw err;
  }
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  return { server, browser, origin: server.origin };
}

/** Asserts, at the end of a test, that nothing left the machine and no page threw. */
export function checkBrowserLog(t, browser, { allowPageErrors = false } = {}) {
  const { foreignRequests, pageErrors, consoleErrors } = browser.log;
  for (const line of consoleErrors) t.diagnostic(`console error: ${line}`);
  if (foreignRequests.length) {
    throw new Error(`requests left 127.0.0.1:\n${foreignRequests.join("\n")}`);
  }
  if (pageErrors.length && !allowPageErrors) {
    throw new Error(`uncaught errors in pages:\n${pageErrors.join("\n")}`);
  }
  for (const line of pageErrors) t.diagnostic(`page error: ${line}`);
}

// ---------------------------------------------------------------------------------------------
// App steps, written against the DOM contract agreed with the web client.

export const sel = (testid) => `[data-testid=${testid}]`;

/** Navigates and waits for the app's readiness marker. */
export async function open(page, url) {
  const response = await page.goto(url);
  if (response && !response.ok()) {
    const body = (await response.text().catch(() => "")).slice(0, 300);
    throw new Error(`GET ${url} answered ${response.status()}: ${body}`);
  }
  await waitReady(page);
  return response;
}

/** Waits for `body[data-ready='1']`; on time-out says where the page was and what it showed. */
export async function waitReady(page) {
  try {
    await page.waitForSelector("body[data-ready='1']", { state: "attached" });
  } catch (err) {
    const shown = await page
      .evaluate(() => document.body?.innerText ?? "")
      .catch(() => "(page gone)");
    err.message += `\n  page ${page.url()} never set body[data-ready='1']; it shows: ${JSON.stringify(shown.slice(0, 300))}`;
    throw err;
  }
}

/**
 * Creates a lab through `/new#organizer=…` in `page`; returns what the page shows:
 * `{ joinCode, joinUrl, facilitatorKey, labId, boardHref }`.
 */
export async function createLabInUi(page, origin, lab) {
  await open(page, `${origin}/new#organizer=${encodeURIComponent(ORGANIZER_TOKEN)}`);
  await page.fill(sel("new-title"), lab.title);
  if (lab.school !== undefined) await page.fill(sel("new-school"), lab.school);
  if (lab.grade !== undefined) await fillOrSelect(page, sel("new-grade"), lab.grade);
  if (lab.date !== undefined) await page.fill(sel("new-date"), lab.date);
  await page.click(sel("new-submit"));
  const created = page.locator(sel("new-join-code"));
  const failed = page.locator(sel("new-error"));
  await created.or(failed).first().waitFor({ state: "visible" });
  if (await failed.isVisible()) {
    throw new Error(`creating the lab failed: ${await failed.textContent()}`);
  }
  const text = async (testid) => ((await page.locator(sel(testid)).textContent()) ?? "").trim();
  const valueOrText = async (testid) => {
    const loc = page.locator(sel(testid));
    const tag = await loc.evaluate((el) => el.tagName);
    if (tag === "INPUT" || tag === "TEXTAREA") return (await loc.inputValue()).trim();
    const href = await loc.getAttribute("href");
    return href ?? ((await loc.textContent()) ?? "").trim();
  };
  return {
    joinCode: await text("new-join-code"),
    joinUrl: await valueOrText("new-join-url"),
    facilitatorKey: await valueOrText("new-facilitator-key"),
    labId: await valueOrText("new-lab-id"),
    boardHref: await page.locator(sel("new-board-link")).getAttribute("href"),
  };
}

async function fillOrSelect(page, selector, value) {
  const tag = await page.locator(selector).evaluate((el) => el.tagName);
  if (tag === "SELECT") await page.selectOption(selector, value);
  else await page.fill(selector, value);
}

/** Creates a lab with the labs API (organizer token); returns the create answer. */
export async function createLabInApi(origin, lab) {
  const res = await fetch(`${origin}/api/labs`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ORGANIZER_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(lab),
  });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`POST /api/labs: ${res.status} ${body}`);
  return JSON.parse(body);
}

/**
 * The facilitator's laptop: creates a lab in `/new` and follows the board link in the same
 * page (the facilitator is signed in automatically). Returns the lab as shown.
 */
export async function createLabAndOpenBoard(page, origin, lab) {
  const created = await createLabInUi(page, origin, lab);
  await page.click(sel("new-board-link"));
  await page.waitForURL(`**/lab/${created.labId}/board`);
  await waitReady(page);
  await page.locator(sel("board-column")).first().waitFor();
  return created;
}

/** Waits until `page` shows the observer page of a lab. */
export async function waitObserverPage(page) {
  await page.waitForURL(/\/lab\/[^/]+$/);
  await waitReady(page);
  await page.locator(sel("note-text")).waitFor({ state: "visible" });
}

/** Joins on `/` with code and name. */
export async function joinByCode(page, origin, code, name) {
  await open(page, `${origin}/`);
  await page.fill(sel("join-code"), code);
  await page.fill(sel("join-name"), name);
  await page.locator(sel("join-submit")).tap();
  await waitObserverPage(page);
}

/**
 * Joins through the join link `/j/<code>` (on this server's origin; the link's own host is the
 * server's public URL, a LAN address these tests must not use), typing only the name.
 * Returns the code the join page had filled in.
 */
export async function joinByLink(page, origin, joinUrl, name) {
  const { pathname } = new URL(joinUrl, origin);
  await open(page, `${origin}${pathname}`);
  const prefilled = (await page.inputValue(sel("join-code"))).trim();
  await page.fill(sel("join-name"), name);
  await page.locator(sel("join-submit")).tap();
  await waitObserverPage(page);
  return prefilled;
}

/**
 * Posts a note from the observer page: taps the category chip, types, taps send. Waits for the
 * note in the feed and returns its `{ id, status }`.
 */
export async function postNote(page, category, text) {
  const chip = page.locator(`${sel("category-chip")}[data-category="${category}"]`);
  await chip.tap();
  await poll(`chip ${category} pressed`, () => chip.getAttribute("aria-pressed"), (v) => v === "true");
  await page.fill(sel("note-text"), text);
  await page.locator(sel("note-send")).tap();
  const note = feedNote(page, text);
  await note.waitFor({ state: "visible" });
  // The box is emptied for the next note.
  await poll("the note box to be emptied", () => page.inputValue(sel("note-text")), (v) => v === "");
  return { id: await note.getAttribute("data-note-id"), status: await note.getAttribute("data-status") };
}

/** The feed items whose body is exactly `text`. */
export function feedNote(page, text) {
  return page.locator(sel("feed-note")).filter({ has: exactBody(page, text) });
}

/** The board notes in `category`'s column whose body is exactly `text`. */
export function boardNote(page, category, text) {
  return page
    .locator(`${sel("board-column")}[data-category="${category}"] ${sel("board-note")}`)
    .filter({ has: exactBody(page, text) });
}

function exactBody(page, text) {
  return page.locator(sel("note-body")).filter({ hasText: exactly(text) });
}

function exactly(text) {
  return new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`);
}

/** Polls `probe` (async, Node side) until `accept(value)`; bounded by WAIT. */
export async function poll(what, probe, accept, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let value;
  for (;;) {
    value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`waiting for ${what}: still ${JSON.stringify(value)} after ${timeout} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `locator` matches exactly `n` elements. */
export async function waitCount(locator, n, what = "elements") {
  await poll(`${n} ${what}`, () => locator.count(), (count) => count === n);
}

/** Waits until every element `locator` matches (at least `n`) has `data-status=status`. */
export async function waitStatus(locator, status, n = 1) {
  await poll(
    `${n} note(s) with data-status="${status}"`,
    () => locator.evaluateAll((els) => els.map((el) => el.getAttribute("data-status"))),
    (statuses) => statuses.length >= n && statuses.every((s) => s === status),
  );
}

/** The first integer in an element's text (for counters such as `pending-count`). */
export async function numberIn(page, testid) {
  const loc = page.locator(sel(testid));
  if ((await loc.count()) === 0) return NaN;
  const text = (await loc.first().textContent()) ?? "";
  const match = /-?\d+/.exec(text);
  return match ? Number(match[0]) : NaN;
}

/** Waits until the first integer in `testid`'s text satisfies `accept`. */
export async function waitNumber(page, testid, what, accept, timeout = WAIT) {
  return poll(what, () => numberIn(page, testid), accept, timeout);
}

/** Waits until `testid`'s `attr` equals `value`. */
export async function waitAttr(page, testid, attr, value) {
  await poll(
    `${testid} ${attr}="${value}"`,
    () => page.locator(sel(testid)).first().getAttribute(attr, { timeout: WAIT }),
    (v) => v === value,
  );
}

/** Sizes every page is checked at: a phone (touch), a tablet (touch) and a projector. */
export const TABLET = { viewport: { width: 1180, height: 820 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 };
export const SIZES = { phone: PHONE, tablet: TABLET, projector: PROJECTOR };

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core (WCAG 2.1 A and AA rules) on what `page` shows now and fails `t` with every
 * serious or critical violation, naming the rule, the element and axe's summary. Runs in the page
 * through the DevTools protocol, so the page's Content-Security-Policy is untouched. Returns all
 * violations, the minor and moderate ones too, for a test that wants to look at them.
 */
export async function audit(page, label) {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
      resultTypes: ["violations"],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(1).join(" ")}`),
    }));
  });
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}) ${v.help}\n    ${v.nodes.slice(0, 5).join("\n    ")}`),
    [],
    `axe on ${label}: serious or critical violations`,
  );
  return violations;
}
