import { describe, expect, it } from "vitest";

import {
  MAX_SIDE,
  PhotoError,
  fitWithin,
  hex,
  photoInputProblem,
  preparePhoto,
  sha256Hex,
  sha256Js,
  type DecodedImage,
  type PhotoCanvas,
  type PhotoType,
} from "./photo";

const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const TWO_BLOCKS = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

const text = (s: string) => new TextEncoder().encode(s);
/** The platform's SHA-256 (node has crypto.subtle), as the reference. */
const reference = async (data: Uint8Array | string) =>
  hex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? text(data) : data.slice()));

describe("fitWithin", () => {
  it("scales the longest side down to the limit, keeping the ratio", () => {
    expect(fitWithin(4032, 3024, 1600)).toEqual({ width: 1600, height: 1200 });
    expect(fitWithin(3024, 4032, 1600)).toEqual({ width: 1200, height: 1600 });
    expect(fitWithin(4000, 4000, 1600)).toEqual({ width: 1600, height: 1600 });
  });
  it("never upscales", () => {
    expect(fitWithin(800, 600, 1600)).toEqual({ width: 800, height: 600 });
    expect(fitWithin(1600, 900, 1600)).toEqual({ width: 1600, height: 900 });
    expect(fitWithin(1, 1, 1600)).toEqual({ width: 1, height: 1 });
  });
  it("rounds to whole pixels, odd sizes included", () => {
    // 2001 × 667 → scale 1600 / 2001 = 0.7996…: 667 × 0.7996 = 533.3
    expect(fitWithin(2001, 667, 1600)).toEqual({ width: 1600, height: 533 });
    expect(fitWithin(3, 2, 2)).toEqual({ width: 2, height: 1 });
    expect(fitWithin(1601, 3, 1600)).toEqual({ width: 1600, height: 3 });
  });
  it("keeps a very thin picture at least 1 px wide", () => {
    expect(fitWithin(100_000, 1, 1600)).toEqual({ width: 1600, height: 1 });
    expect(fitWithin(1, 100_000, 1600)).toEqual({ width: 1, height: 1600 });
  });
  it("gives 0 × 0 for sizes that are not sizes", () => {
    expect(fitWithin(0, 10)).toEqual({ width: 0, height: 0 });
    expect(fitWithin(10, -1)).toEqual({ width: 0, height: 0 });
    expect(fitWithin(Number.NaN, 10)).toEqual({ width: 0, height: 0 });
    expect(fitWithin(Number.POSITIVE_INFINITY, 10)).toEqual({ width: 0, height: 0 });
  });
  it("uses 1600 by default", () => {
    expect(MAX_SIDE).toBe(1600);
    expect(fitWithin(3200, 100)).toEqual({ width: 1600, height: 50 });
  });
});

describe("hex and sha256Hex", () => {
  it("writes lowercase hex, two digits a byte", () => {
    expect(hex(new Uint8Array([0, 1, 15, 16, 255]))).toBe("00010f10ff");
    expect(hex(new Uint8Array([0xab, 0xcd]).buffer)).toBe("abcd");
    expect(hex(new Uint8Array([9, 0xab, 0xcd, 7]).subarray(1, 3))).toBe("abcd");
    expect(hex(new ArrayBuffer(0))).toBe("");
  });
  it("matches the standard vectors, with crypto.subtle and without", async () => {
    for (const subtle of [undefined, null]) {
      expect(await sha256Hex(new Uint8Array(0), subtle)).toBe(EMPTY);
      expect(await sha256Hex(text("abc"), subtle)).toBe(ABC);
      expect(await sha256Hex(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), subtle)).toBe(TWO_BLOCKS);
      expect(await sha256Hex(new Blob([text("abc")]), subtle)).toBe(ABC);
      expect(await sha256Hex(text("abc").buffer, subtle)).toBe(ABC);
    }
  });
  it("the JavaScript SHA-256 agrees with the platform's at every length around the block edges", async () => {
    for (const n of [1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 100_003]) {
      const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      expect(hex(sha256Js(data)), `length ${n}`).toBe(await reference(data));
    }
  });
  it("falls back to JavaScript when crypto.subtle fails", async () => {
    const broken = { digest: () => Promise.reject(new Error("not allowed")) };
    expect(await sha256Hex(text("abc"), broken)).toBe(ABC);
  });
});

describe("photoInputProblem", () => {
  it("accepts camera pictures", () => {
    expect(photoInputProblem({ type: "image/jpeg", size: 3_000_000, name: "IMG_0001.JPG" })).toBeUndefined();
    expect(photoInputProblem({ type: "image/heic", size: 2_000_000 })).toBeUndefined();
    expect(photoInputProblem({ type: "image/png", size: 10 })).toBeUndefined();
    // Some galleries give no type: the name decides, or decoding does.
    expect(photoInputProblem({ type: "", size: 10, name: "photo.jpeg" })).toBeUndefined();
    expect(photoInputProblem({ type: "", size: 10 })).toBeUndefined();
  });
  it("refuses what is not a photo, in words", () => {
    expect(photoInputProblem({ type: "application/pdf", size: 10, name: "worksheet.pdf" })).toMatch(/not a photo/);
    expect(photoInputProblem({ type: "video/mp4", size: 10 })).toMatch(/video/);
    expect(photoInputProblem({ type: "image/svg+xml", size: 10 })).toMatch(/not a photo/);
    expect(photoInputProblem({ type: "", size: 10, name: "notes.txt" })).toMatch(/not a photo/);
    expect(photoInputProblem({ type: "image/jpeg", size: 0 })).toMatch(/empty/);
    expect(photoInputProblem({ type: "image/jpeg", size: 500 * 1024 * 1024 })).toMatch(/too large/);
  });
});

interface FakeImage extends DecodedImage {
  closed: boolean;
}

/** A canvas whose "encoding" writes the size and type, so the hash depends on both. */
function fakeCanvas(w: number, h: number, opts: { webp?: boolean; failDecode?: boolean } = {}) {
  const calls: { width: number; height: number; type: PhotoType; quality: number }[] = [];
  const images: FakeImage[] = [];
  const canvas: PhotoCanvas<FakeImage> = {
    async decode() {
      if (opts.failDecode) throw new Error("InvalidStateError");
      const img = { width: w, height: h, closed: false, close: () => (img.closed = true) };
      images.push(img);
      return img;
    },
    async encode(_img, width, height, type, quality) {
      calls.push({ width, height, type, quality });
      const out = type === "image/webp" && !opts.webp ? "image/png" : type;
      return new Blob([`${out} ${width}x${height}`], { type: out });
    },
  };
  return { canvas, calls, images };
}

describe("preparePhoto", () => {
  const photo = new Blob([new Uint8Array([0xff, 0xd8, 0xff, 0xe1])], { type: "image/jpeg" });

  it("scales a camera photo to 1600 px, encodes JPEG at 0.82 and names it by its SHA-256", async () => {
    const { canvas, calls, images } = fakeCanvas(4032, 3024);
    const p = await preparePhoto(photo, { canvas });
    expect(calls).toEqual([{ width: 1600, height: 1200, type: "image/jpeg", quality: 0.82 }]);
    expect(p).toMatchObject({ type: "image/jpeg", width: 1600, height: 1200, bytes: p.blob.size });
    expect(p.id).toBe(await reference("image/jpeg 1600x1200"));
    expect(p.id).toMatch(/^[0-9a-f]{64}$/);
    expect(images[0].closed).toBe(true);
  });

  it("gives the same id without crypto.subtle", async () => {
    const a = await preparePhoto(photo, { canvas: fakeCanvas(100, 50).canvas });
    const b = await preparePhoto(photo, { canvas: fakeCanvas(100, 50).canvas, subtle: null });
    expect(b.id).toBe(a.id);
    expect(b).toMatchObject({ width: 100, height: 50 });
  });

  it("writes WebP when asked, and JPEG when the browser cannot", async () => {
    const yes = fakeCanvas(2000, 1000, { webp: true });
    expect((await preparePhoto(photo, { canvas: yes.canvas, format: "webp" })).type).toBe("image/webp");
    const no = fakeCanvas(2000, 1000);
    const p = await preparePhoto(photo, { canvas: no.canvas, format: "webp" });
    expect(p.type).toBe("image/jpeg");
    expect(no.calls.map((c) => c.type)).toEqual(["image/webp", "image/jpeg"]);
  });

  it("refuses a file that is not a picture before decoding it", async () => {
    const { canvas, calls } = fakeCanvas(10, 10);
    const pdf = new Blob(["%PDF-1.4"], { type: "application/pdf" });
    await expect(preparePhoto(pdf, { canvas })).rejects.toThrow(PhotoError);
    await expect(preparePhoto(pdf, { canvas })).rejects.toThrow(/not a photo/);
    expect(calls).toEqual([]);
  });

  it("says so when the picture cannot be read", async () => {
    const { canvas } = fakeCanvas(10, 10, { failDecode: true });
    await expect(preparePhoto(photo, { canvas })).rejects.toThrow(/could not be opened/);
    const zero = fakeCanvas(0, 0);
    await expect(preparePhoto(photo, { canvas: zero.canvas })).rejects.toThrow(/could not be opened/);
    expect(zero.images[0].closed).toBe(true);
  });

  it("says so when the phone cannot encode, and frees the picture", async () => {
    const { canvas, images } = fakeCanvas(10, 10);
    canvas.encode = () => Promise.reject(new RangeError("out of memory"));
    await expect(preparePhoto(photo, { canvas })).rejects.toThrow(/could not prepare the photo/);
    expect(images[0].closed).toBe(true);
  });
});
