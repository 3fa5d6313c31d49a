// The text of a PDF as its lines, read with pdf.js: for checking what Chromium printed.

import { getDocument } from "pdfjs-dist/legacy/build/pdf.mjs";

/**
 * The lines of every page of the PDF in `bytes`, top to bottom: `[{ page, lines: string[] }]`.
 * Pieces of text on one baseline are one line, joined left to right; a gap wider than a sliver
 * between two pieces counts as a space.
 */
export async function pdfLines(bytes) {
  const pdf = await getDocument({ data: new Uint8Array(bytes), useSystemFonts: false, isEvalSupported: false }).promise;
  const pages = [];
  for (let n = 1; n <= pdf.numPages; n++) {
    const page = await pdf.getPage(n);
    const content = await page.getTextContent();
    const rows = new Map();
    for (const item of content.items) {
      if (!("str" in item) || item.str === "") continue;
      const y = Math.round(item.transform[5]);
      const key = [...rows.keys()].find((k) => Math.abs(k - y) <= 2) ?? y;
      if (!rows.has(key)) rows.set(key, []);
      rows.get(key).push({ x: item.transform[4], width: item.width, str: item.str });
    }
    const lines = [...rows.entries()]
      .sort((a, b) => b[0] - a[0])
      .map(([, pieces]) => {
        pieces.sort((a, b) => a.x - b.x);
        let line = "";
        let end = -Infinity;
        for (const p of pieces) {
          if (line && p.x - end > 1 && !/\s$/.test(line) && !/^\s/.test(p.str)) line += " ";
          line += p.str;
          end = p.x + p.width;
        }
        return line.replace(/\s+/g, " ").trim();
      })
      .filter((line) => line !== "");
    pages.push({ page: n, lines });
  }
  await pdf.destroy();
  return pages;
}

/**
 * The words of `text` (split on white space) that no printed line holds whole: a word split
 * across two lines, or missing. Empty when every word of `text` is printed whole.
 */
export function wordsNotWhole(pages, text) {
  const printed = new Set(pages.flatMap((p) => p.lines.flatMap((line) => line.split(" "))));
  return text
    .trim()
    .split(/\s+/)
    .filter((word) => !printed.has(word));
}

/** Whether the printed text, lines joined with spaces, holds `text` (white space evened out). */
export function printedHolds(pages, text) {
  const all = pages.flatMap((p) => p.lines).join(" ");
  return all.includes(text.trim().replace(/\s+/g, " "));
}
