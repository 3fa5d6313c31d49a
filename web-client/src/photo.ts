// A photo of student work, made ready for upload on the phone: decoded upright, scaled so its
// longest side is at most 1600 px, re-encoded as JPEG (or WebP when asked), which leaves the
// camera's EXIF, GPS position and every other piece of metadata behind, and named by the SHA-256
// of the encoded bytes, the id the server's `PUT /api/labs/{labId}/photos/{sha256}` expects.
//
// How the UI uses it (the camera button is wired in a later change):
//   const input = <input type="file" accept="image/*" capture="environment">;
//   on change: const problem = photoInputProblem(file); if (problem) show(problem) and stop;
//   try { const prepared = await preparePhoto(file); await photoQueue.add(labId, prepared); }
//   catch (e) { show(e instanceof PhotoError ? e.message : "This photo could not be prepared. Try again."); }
//   then put `prepared.id` into the note's photo ids and let photoqueue.ts upload it.
// Every error message here is written for a coach and can be shown as is.
//
// The pure parts (fitWithin, hex, sha256Hex, photoInputProblem) are tested in node; decoding and
// drawing go through a small `PhotoCanvas` that tests replace with a fake. In the browser,
// `browserCanvas` decodes with createImageBitmap (an <img> where that is missing or fails, e.g.
// HEIC in Safari) and draws on an OffscreenCanvas, or on a <canvas> where there is none.
// Phones reach the server over plain http, where `crypto.subtle` is missing: sha256Hex then uses
// the JavaScript SHA-256 below, which gives the same ids.

/** The longest side, in pixels, of a prepared photo. */
export const MAX_SIDE = 1600;
/** JPEG (and WebP) quality: small files that still show a child's handwriting clearly. */
export const QUALITY = 0.82;
/**
 * The largest file we try to open. Camera originals are 2–15 MB; a file far above that is not a
 * photo from this phone's camera and would only exhaust its memory.
 */
export const MAX_INPUT_BYTES = 60 * 1024 * 1024;

export type PhotoType = "image/jpeg" | "image/webp";

export interface PreparedPhoto {
  /** Lowercase hex SHA-256 of `blob`'s bytes. */
  id: string;
  blob: Blob;
  type: PhotoType;
  width: number;
  height: number;
  /** `blob.size`. */
  bytes: number;
}

/** A failure to prepare a photo; its message is meant for the coach. */
export class PhotoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PhotoError";
  }
}

/**
 * The size that fits `w` × `h` within `max` × `max`, keeping the aspect ratio and never
 * upscaling. Sides are rounded and at least 1 px. Non-finite or non-positive sizes give 0 × 0.
 */
export function fitWithin(w: number, h: number, max: number = MAX_SIDE): { width: number; height: number } {
  if (!(w > 0) || !(h > 0) || !Number.isFinite(w) || !Number.isFinite(h)) return { width: 0, height: 0 };
  const limit = Math.max(1, Math.floor(max));
  const scale = Math.min(1, limit / Math.max(w, h));
  if (scale >= 1) return { width: Math.max(1, Math.round(w)), height: Math.max(1, Math.round(h)) };
  // The longest side gets exactly `limit`, whatever rounding does to the other one.
  if (w >= h) return { width: limit, height: Math.min(limit, Math.max(1, Math.round(h * scale))) };
  return { width: Math.min(limit, Math.max(1, Math.round(w * scale))), height: limit };
}

/** Lowercase hex of the bytes. */
export function hex(buffer: ArrayBuffer | ArrayBufferView): string {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/**
 * SHA-256 in plain JavaScript. Phones reach the server over plain http on the school network,
 * where `crypto.subtle` does not exist (it needs a secure context), so this is what they use.
 */
export function sha256Js(input: Uint8Array): Uint8Array<ArrayBuffer> {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const len = input.length;
  // Message, 0x80, zeros, then the bit length as 64 bits big-endian; a multiple of 64 bytes.
  const total = Math.ceil((len + 9) / 64) * 64;
  const msg = new Uint8Array(total);
  msg.set(input);
  msg[len] = 0x80;
  const view = new DataView(msg.buffer);
  view.setUint32(total - 8, Math.floor(len / 0x20000000), false);
  view.setUint32(total - 4, (len * 8) >>> 0, false);
  const w = new Uint32Array(64);
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4, false);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15];
      const b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K256[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setUint32(i * 4, h[i], false);
  return out;
}

type Subtle = Pick<SubtleCrypto, "digest">;

function defaultSubtle(): Subtle | undefined {
  try {
    return globalThis.crypto?.subtle ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Lowercase hex SHA-256 of the bytes: `crypto.subtle.digest` where the page has it (https,
 * localhost), else `sha256Js`. `subtle` is for tests (`null`: force the JavaScript one).
 */
export async function sha256Hex(bytes: ArrayBuffer | Uint8Array | Blob, subtle: Subtle | null | undefined = defaultSubtle()): Promise<string> {
  const data =
    bytes instanceof Uint8Array ? bytes : bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(await bytes.arrayBuffer());
  if (subtle) {
    try {
      // A copy into a plain ArrayBuffer: digest refuses views of shared memory.
      return hex(await subtle.digest("SHA-256", data.slice()));
    } catch {
      /* fall back to JavaScript */
    }
  }
  return hex(sha256Js(data));
}

const IMAGE_EXTENSIONS = /\.(jpe?g|jfif|png|webp|heic|heif|avif|gif|bmp)$/i;

/**
 * Why `file` cannot be a photo, in words for a coach, or undefined when it may be one. An empty
 * type (some Android galleries give none) passes when the name looks like a picture or there is
 * no name; decoding tells the rest.
 */
export function photoInputProblem(file: { type?: string; size?: number; name?: string }): string | undefined {
  const type = (file.type ?? "").toLowerCase().trim();
  const name = file.name ?? "";
  if (file.size === 0) return "This file is empty. Take the photo again.";
  if (type === "image/svg+xml") return "This is a drawing file, not a photo. Choose a photo from the camera or the gallery.";
  if (type && !type.startsWith("image/")) {
    if (type.startsWith("video/")) return "This is a video. Choose a photo instead (the camera's photo mode).";
    return "This file is not a photo. Choose a photo from the camera or the gallery.";
  }
  if (!type && name && !IMAGE_EXTENSIONS.test(name)) {
    return "This file is not a photo. Choose a photo from the camera or the gallery.";
  }
  if (file.size !== undefined && file.size > MAX_INPUT_BYTES) {
    return "This picture is too large to open on the phone. Take a new photo with the camera instead.";
  }
  return undefined;
}

/** A decoded picture, upright, ready to draw. */
export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  /** Frees its memory (an ImageBitmap's `close`). */
  close(): void;
}

/** The browser parts of preparing a photo, replaceable in tests. */
export interface PhotoCanvas<D extends DecodedImage = DecodedImage> {
  /** Decodes the file upright (EXIF orientation applied); rejects when it is not a readable image. */
  decode(file: Blob): Promise<D>;
  /** Draws `image` scaled to `width` × `height` on white and encodes it as `type` at `quality`. */
  encode(image: D, width: number, height: number, type: PhotoType, quality: number): Promise<Blob>;
}

/** A picture the browser decoded: an ImageBitmap, or an <img> where that fails. */
export interface BrowserImage extends DecodedImage {
  readonly source: CanvasImageSource;
}

/** Decodes with an <img> (upright by default in current browsers), for browsers whose createImageBitmap cannot. */
function decodeWithImg(file: Blob): Promise<BrowserImage> {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight, source: img, close: () => URL.revokeObjectURL(url) });
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("not an image"));
    };
    img.src = url;
  });
}

/**
 * The browser's PhotoCanvas: createImageBitmap (an <img> when it is missing or fails), then an
 * OffscreenCanvas or else a <canvas>.
 */
export const browserCanvas: PhotoCanvas<BrowserImage> = {
  async decode(file) {
    if (typeof createImageBitmap === "function") {
      try {
        const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
        return { width: bitmap.width, height: bitmap.height, source: bitmap, close: () => bitmap.close() };
      } catch {
        /* some browsers decode more kinds (HEIC in Safari) through <img> */
      }
    }
    return decodeWithImg(file);
  },
  async encode(image, width, height, type, quality) {
    if (typeof OffscreenCanvas !== "undefined") {
      const canvas = new OffscreenCanvas(width, height);
      const ctx = canvas.getContext("2d");
      // Safari 16 has OffscreenCanvas without a 2D context: fall through to a <canvas>.
      if (ctx) {
        draw(ctx, image.source, width, height);
        return canvas.convertToBlob({ type, quality });
      }
    }
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    if (!ctx) throw new PhotoError("This phone could not prepare the photo. Try again, or restart the browser.");
    draw(ctx, image.source, width, height);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, type, quality));
    // Free the pixels now; phones have little memory for canvases.
    canvas.width = 0;
    canvas.height = 0;
    if (!blob) throw new PhotoError("This phone could not prepare the photo. Try again, or restart the browser.");
    return blob;
  },
};

function draw(ctx: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D, image: CanvasImageSource, width: number, height: number): void {
  // JPEG has no transparency: a transparent picture (a screenshot, a PNG) goes on white, not black.
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(image, 0, 0, width, height);
}

export interface PrepareOptions<D extends DecodedImage = DecodedImage> {
  /** Longest side in pixels (default 1600). */
  maxSide?: number;
  /** "webp" for WebP; JPEG otherwise, and also when this browser cannot encode WebP. */
  format?: "jpeg" | "webp";
  /** Encoder quality, 0–1 (default 0.82). */
  quality?: number;
  /** The decoder and canvas (tests pass a fake). */
  canvas?: PhotoCanvas<D>;
  /** For tests: the digest to use, or null for the JavaScript SHA-256. */
  subtle?: Subtle | null;
}

const NOT_READABLE = "This photo could not be opened. Take it again, or choose a JPEG or PNG picture.";

/**
 * Prepares a photo for upload (see the header). Rejects with a PhotoError whose message is for
 * the coach when the file is not a readable picture.
 */
export async function preparePhoto<D extends DecodedImage = BrowserImage>(file: Blob, opts: PrepareOptions<D> = {}): Promise<PreparedPhoto> {
  const problem = photoInputProblem(file as Blob & { name?: string });
  if (problem) throw new PhotoError(problem);
  const canvas = (opts.canvas ?? browserCanvas) as PhotoCanvas<D>;
  let image: D;
  try {
    image = await canvas.decode(file);
  } catch {
    throw new PhotoError(NOT_READABLE);
  }
  let blob: Blob;
  let size: { width: number; height: number };
  try {
    size = fitWithin(image.width, image.height, opts.maxSide ?? MAX_SIDE);
    if (size.width === 0) throw new PhotoError(NOT_READABLE);
    const quality = opts.quality ?? QUALITY;
    blob = await encodeAs(canvas, image, size, opts.format === "webp" ? "image/webp" : "image/jpeg", quality);
    // A browser that cannot write WebP hands back PNG instead (Safari before 17): use JPEG then.
    if (blob.type !== "image/jpeg" && blob.type !== "image/webp") {
      blob = await encodeAs(canvas, image, size, "image/jpeg", quality);
    }
  } finally {
    try {
      image.close();
    } catch {
      /* already closed */
    }
  }
  if (blob.type !== "image/jpeg" && blob.type !== "image/webp") {
    throw new PhotoError("This phone could not save the photo as a JPEG. Try another browser.");
  }
  if (blob.size === 0) throw new PhotoError("This phone could not prepare the photo. Try again.");
  const id = await sha256Hex(blob, opts.subtle === undefined ? defaultSubtle() : opts.subtle);
  return { id, blob, type: blob.type as PhotoType, width: size.width, height: size.height, bytes: blob.size };
}

async function encodeAs<D extends DecodedImage>(canvas: PhotoCanvas<D>, image: D, size: { width: number; height: number }, type: PhotoType, quality: number): Promise<Blob> {
  try {
    return await canvas.encode(image, size.width, size.height, type, quality);
  } catch (e) {
    if (e instanceof PhotoError) throw e;
    // Usually out of memory on an older phone.
    throw new PhotoError("This phone could not prepare the photo. Close other apps and try again.");
  }
}
