// Steps the phone scenarios share (phone-*.test.mjs), on top of harness.mjs and scenario.mjs.

import assert from "node:assert/strict";
import { poll, sel, waitAttr } from "./harness.mjs";
import { text, waitVisible } from "./scenario.mjs";

/** The facilitator makes `phaseId` current from the board's phase bar; waits for `phones`. */
export async function startPhase(board, phaseId, phones = []) {
  await board.locator(`${sel("phase-item")}[data-phase="${phaseId}"]`).click();
  await waitAttr(board, "phase-bar", "data-current", phaseId);
  for (const page of phones) await waitAttr(page, "phase-current", "data-phase", phaseId);
}

/** A box's position and size, rounded to whole pixels. */
export async function box(locator) {
  const b = await locator.boundingBox();
  assert.ok(b, "the element has a box");
  return { x: Math.round(b.x), y: Math.round(b.y), width: Math.round(b.width), height: Math.round(b.height) };
}

/** Calls a time-out deliberately: the first tap arms the button, the second calls. */
export async function callTimeout(page) {
  const call = page.locator(sel("timeout-call"));
  await call.tap();
  await waitAttr(page, "timeout-call", "data-armed", "true");
  await call.tap();
  await waitVisible(page.locator(sel("timeout-banner")), true, "the time-out banner on the caller's phone");
}

/** Whether the element is on screen and nothing covers its centre (a tap there reaches it). */
export async function reachable(page, locator) {
  return locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const vh = window.visualViewport?.height ?? window.innerHeight;
    if (r.width === 0 || r.bottom > vh || r.top < 0) return false;
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return hit === el || el.contains(hit);
  });
}

/** The facilitator writes an agreement in the board's agreements panel. */
export async function addAgreement(board, body, owner = "") {
  const panel = board.locator(sel("agreements-panel"));
  if (!(await panel.isVisible())) await board.locator(sel("agreements-toggle")).click();
  await board.fill(sel("agreement-new-text"), body);
  await board.fill(sel("agreement-new-owner"), owner);
  await board.locator(sel("agreement-add")).click();
  await poll(`the agreement "${body}" on the board`, () => panel.locator(sel("agreement-item")).filter({ hasText: body }).count(), (n) => n === 1);
}

export { text };
