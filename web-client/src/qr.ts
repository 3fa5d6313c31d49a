// A QR code of the join link as SVG, generated here (no network): lean-qr encodes, we draw.

import { correction, generate } from "lean-qr";

/** The QR modules of `text` as one SVG path (`d`), and the code's size in modules. */
export function qrPath(text: string): { d: string; size: number } {
  const code = generate(text, { minCorrectionLevel: correction.M });
  let d = "";
  for (let y = 0; y < code.size; y++) {
    for (let x = 0; x < code.size; x++) {
      if (!code.get(x, y)) continue;
      // Merge horizontal runs into one rectangle each.
      let run = 1;
      while (x + run < code.size && code.get(x + run, y)) run++;
      d += `M${x} ${y}h${run}v1h-${run}z`;
      x += run - 1;
    }
  }
  return { d, size: code.size };
}

const SVG = "http://www.w3.org/2000/svg";

/** An `<svg>` QR code with a 4-module quiet zone, dark on white in every theme (scanners need it). */
export function qrSvg(text: string, label: string): SVGSVGElement {
  const { d, size } = qrPath(text);
  const pad = 4;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `${-pad} ${-pad} ${size + 2 * pad} ${size + 2 * pad}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(SVG, "rect");
  bg.setAttribute("x", String(-pad));
  bg.setAttribute("y", String(-pad));
  bg.setAttribute("width", String(size + 2 * pad));
  bg.setAttribute("height", String(size + 2 * pad));
  bg.setAttribute("fill", "#ffffff");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000000");
  svg.append(bg, path);
  return svg;
}
