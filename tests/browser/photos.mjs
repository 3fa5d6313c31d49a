// Photos for the browser tests: a camera-sized JPEG drawn in a page (with the EXIF and GPS a
// camera writes), and readers of a JPEG's size and segments to check what the server keeps.

import assert from "node:assert/strict";

/**
 * A camera-sized JPEG (2400x1800) of a recording sheet, drawn in the page, with an EXIF segment
 * holding GPS coordinates and a camera name put in after the start marker, as a phone's camera
 * writes it.
 */
export async function cameraPhoto(page, label) {
  const base64 = await page.evaluate(async (label) => {
    const canvas = new OffscreenCanvas(2400, 1800);
    const g = canvas.getContext("2d");
    g.fillStyle = "#fdfcf7";
    g.fillRect(0, 0, 2400, 1800);
    g.strokeStyle = "#1f2937";
    g.lineWidth = 12;
    // Two ten-frames, the second half filled, as a child drew them.
    for (let frame = 0; frame < 2; frame++) {
      for (let i = 0; i < 10; i++) {
        const x = 200 + (i % 5) * 380;
        const y = 250 + frame * 800 + Math.floor(i / 5) * 300;
        g.strokeRect(x, y, 380, 300);
        if (frame === 0 || i < 4) {
          g.beginPath();
          g.arc(x + 190, y + 150, 100, 0, Math.PI * 2);
          g.fillStyle = frame === 0 ? "#2563eb" : "#dc2626";
          g.fill();
        }
      }
    }
    g.fillStyle = "#111827";
    g.font = "bold 120px sans-serif";
    g.fillText(label, 200, 1750);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.95 });
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }, label);
  const jpeg = Buffer.from(base64, "base64");
  assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8], "the drawn photo is a JPEG");
  const exif = Buffer.concat([Buffer.from("Exif\0\0"), Buffer.from("MM\0*GPSLatitude 40.7128 N GPSLongitude 74.0060 W Make PhoneCam Model X", "latin1")]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (exif.length + 2) >> 8, (exif.length + 2) & 0xff]), exif]);
  return Buffer.concat([jpeg.subarray(0, 2), app1, jpeg.subarray(2)]);
}

/** Width and height from a JPEG's start-of-frame segment. */
export function jpegSize(bytes) {
  let i = 2;
  while (i + 9 < bytes.length) {
    assert.equal(bytes[i], 0xff, `a JPEG segment starts at ${i}`);
    const marker = bytes[i + 1];
    const length = bytes.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  throw new Error("no start-of-frame segment");
}

/** The JPEG segments before the image data, by marker (e.g. 0xe1 for EXIF). */
export function jpegMarkers(bytes) {
  const markers = [];
  let i = 2;
  while (i + 4 < bytes.length && bytes[i] === 0xff) {
    const marker = bytes[i + 1];
    markers.push(marker);
    if (marker === 0xda) break;
    i += 2 + bytes.readUInt16BE(i + 2);
  }
  return markers;
}

/** Attaches a photo on the phone's note box from the library; resolves with its id once it is ready. */
export async function attachPhoto(page, buffer, name = "IMG_0001.JPG") {
  const ready = page.locator("[data-testid=photo-slot][data-photo-id]");
  const before = await ready.count();
  await page.locator("[data-testid=photo-library]").setInputFiles({ name, mimeType: "image/jpeg", buffer });
  await ready.nth(before).waitFor({ timeout: 15_000 });
  return ready.nth(before).getAttribute("data-photo-id");
}
