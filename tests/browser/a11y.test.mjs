// Accessibility: axe-core (WCAG 2.1 A and AA) on the pages a lab starts with — the join page and
// the new-lab page, before and after creating a lab — at phone, tablet and projector sizes, with
// no serious or critical violation. The observer page and the board are audited by the tests of
// their own flows, in every phase and view they show.

import { test } from "node:test";
import { ORGANIZER_TOKEN, SIZES, TEST_TIMEOUT, audit, createLabInUi, open, sel, setUp } from "./harness.mjs";

for (const [size, options] of Object.entries(SIZES)) {
  for (const scheme of ["light", "dark"]) {
    test(`join and new-lab pages pass axe at ${size} size, ${scheme}`, { timeout: TEST_TIMEOUT }, async (t) => {
      const { browser, origin } = await setUp(t);
      const ctx = await browser.newContext({ ...options, colorScheme: scheme }, `${size}-${scheme}`);
      const page = await ctx.newPage();

      await open(page, `${origin}/new#organizer=${encodeURIComponent(ORGANIZER_TOKEN)}`);
      await page.locator(sel("new-title")).waitFor();
      await audit(page, `${size} ${scheme} /new`);
      await createLabInUi(page, origin, { title: "Grouping by tens", school: "Lincoln", grade: "2" });
      await audit(page, `${size} ${scheme} /new after creating`);

      await open(page, `${origin}/`);
      await page.locator(sel("join-code")).waitFor();
      await audit(page, `${size} ${scheme} join page`);
    });
  }
}
