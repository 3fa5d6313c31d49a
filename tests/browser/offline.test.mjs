// Scenario 2: a phone loses the network, posts two notes that wait on the phone, survives a
// reload while still offline (service worker + IndexedDB), and when the network returns the
// notes sync and reach the projector exactly once.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  TEST_TIMEOUT,
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
import { joinPhone, projectLab } from "./scenario.mjs";

test("notes written offline survive a reload and sync exactly once", { timeout: TEST_TIMEOUT }, async (t) => {
  const { browser, origin, board, lab } = await projectLab(t, { title: "Making ten, lesson 2" });

  const phone = await joinPhone(browser, origin, lab.joinCode, "Dana", { label: "phone" });
  const ctx = phone.context();

  // One note while online, so the phone holds a synced board before the network drops.
  const before = "Before the Wi-Fi dropped: K. used doubles, 6 + 6 then one more";
  await postNote(phone, "strategies", before);
  await waitStatus(feedNote(phone, before), "synced");
  await waitCount(boardNote(board, "strategies", before), 1, "the online note on the board");

  // The service worker controls the page from the first visit (it claims its clients).
  await phone.waitForFunction(() => navigator.serviceWorker?.controller != null);

  await ctx.setOffline(true);
  await waitAttr(phone, "connection", "data-state", "offline");
  // The emulated outage covers the worker too, so whatever it serves now comes from its cache.
  const [worker] = ctx.serviceWorkers();
  assert.ok(worker, "a service worker runs for the phone");
  const probe = "fetch('/healthz', { cache: 'no-store' }).then((r) => 'answered ' + r.status, () => 'failed')";
  assert.equal(await worker.evaluate(probe), "failed", "the worker cannot reach the server while offline");

  const offline = [
    ["student-thinking", "Offline 1: L. counted all 14 from one instead of counting on from 10"],
    ["wonderings", "Offline 2: does S. know 7 + 3 = 10 or is she counting on fingers?"],
  ];
  for (const [category, text] of offline) {
    await postNote(phone, category, text);
    await waitStatus(feedNote(phone, text), "waiting");
  }
  await waitNumber(phone, "pending-count", "pending count 2 while offline", (n) => n === 2);
  // The note synced earlier stays synced.
  await waitStatus(feedNote(phone, before), "synced");

  // Reload while offline: the worker serves the page, the board comes from IndexedDB.
  const response = await phone.reload();
  await waitReady(phone);
  assert.ok(response, "the offline reload got a response");
  assert.ok(response.ok(), `the offline reload answered ${response.status()}`);
  assert.ok(response.fromServiceWorker(), "the offline reload was served by the service worker");
  await waitAttr(phone, "connection", "data-state", "offline");
  for (const [, text] of offline) {
    await waitCount(feedNote(phone, text), 1, `"${text}" in the feed after the offline reload`);
    await waitStatus(feedNote(phone, text), "waiting");
  }
  await waitCount(feedNote(phone, before), 1, "the synced note after the offline reload");
  await waitNumber(phone, "pending-count", "pending count still 2 after the reload", (n) => n === 2);
  // Nothing reached the projector meanwhile.
  for (const [category, text] of offline) {
    assert.equal(await boardNote(board, category, text).count(), 0, `"${text}" not on the board while offline`);
  }

  // The network returns. The phone's new sync socket names its lab, so a proxy in front of
  // several servers sends it to the lab's server.
  const sockets = [];
  phone.on("websocket", (ws) => sockets.push(ws.url()));
  await ctx.setOffline(false);
  await waitAttr(phone, "connection", "data-state", "online");
  assert.ok(sockets.length > 0, "the phone opened a sync socket on reconnecting");
  for (const url of sockets) {
    const params = new URL(url).searchParams;
    assert.equal(params.get("lab"), lab.labId, `the sync address ${url} names the lab`);
    assert.ok(params.get("token"), `the sync address ${url} carries the token`);
  }
  for (const [, text] of offline) await waitStatus(feedNote(phone, text), "synced");
  await waitNumber(phone, "pending-count", "pending count 0 once synced", (n) => n === 0);

  // Exactly once on the projector. The phone says the server has them; a later note from the
  // same phone is a barrier: once it is on the board, anything sent before it has arrived too.
  for (const [category, text] of offline) {
    await waitCount(boardNote(board, category, text), 1, `"${text}" on the board`);
  }
  const barrier = "Back online: the lesson resumed after the time-out";
  await postNote(phone, "teacher-moves", barrier);
  await waitStatus(feedNote(phone, barrier), "synced");
  await waitCount(boardNote(board, "teacher-moves", barrier), 1, "the barrier note on the board");
  for (const [category, text] of offline) {
    assert.equal(await boardNote(board, category, text).count(), 1, `"${text}" exactly once on the board`);
    assert.equal(await feedNote(phone, text).count(), 1, `"${text}" exactly once in the feed`);
  }
  assert.equal(await board.locator(sel("board-note")).count(), 4, "four notes on the board in all");
  assert.equal(await phone.locator(sel("feed-note")).count(), 4, "four notes in the feed in all");

  // A page reload online shows the same four notes, still once each.
  await phone.reload();
  await waitReady(phone);
  await waitCount(phone.locator(sel("feed-note")), 4, "feed notes after an online reload");
  await waitStatus(phone.locator(sel("feed-note")), "synced", 4);

  checkBrowserLog(t, browser);
});
