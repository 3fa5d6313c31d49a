//! Strips metadata from photos of student work without decoding them: camera originals carry
//! where and when they were taken (EXIF with GPS, XMP, IPTC), which a record of children's work
//! must not keep.
//!
//! Each format is walked as a list of segments or chunks, and only what the image needs to
//! display as taken is copied, byte for byte:
//!
//! - **JPEG**: SOI, APP0 (JFIF), APP2 holding the ICC colour profile (`ICC_PROFILE`, as PNG's
//!   iCCP; browsers write one on every canvas JPEG, so a phone's upload is stored byte for byte),
//!   APP14 (Adobe, needed for colour), DQT, SOFn, DHT, DRI, SOS and the entropy-coded data through
//!   EOI are kept; APP1..APP13 (other APP2 too: FlashPix, the multi-picture format's previews),
//!   APP15 and COM are dropped, and so is anything after EOI.
//! - **PNG**: the critical chunks (IHDR, PLTE, IDAT, IEND) and the rendering chunks (tRNS, gAMA,
//!   cHRM, sRGB, iCCP, sBIT, pHYs, bKGD) are kept whole (their CRCs stay valid); every other
//!   chunk (tEXt, zTXt, iTXt, eXIf, tIME, …) and anything after IEND is dropped.
//! - **WebP**: the EXIF and XMP chunks are dropped, their flags in VP8X cleared and the RIFF
//!   size fixed.

use std::fmt;

/// An image format accepted for photos, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
}

impl Kind {
    /// The format of `bytes` by its magic bytes, if it is one of the accepted ones.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.starts_with(PNG_SIGNATURE) {
            Some(Kind::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Kind::Webp)
        } else {
            None
        }
    }

    /// The `Content-Type` photos of this format are served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Jpeg => "JPEG",
            Kind::Png => "PNG",
            Kind::Webp => "WebP",
        })
    }
}

/// Why a photo could not be walked: its structure is broken where `reason` says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a readable {kind}: {reason}")]
pub struct Unreadable {
    pub kind: Kind,
    pub reason: &'static str,
}

/// The photo without its metadata; see the module documentation for what is kept.
pub fn strip(bytes: &[u8]) -> Result<(Kind, Vec<u8>), StripError> {
    let kind = Kind::detect(bytes).ok_or(StripError::UnknownFormat)?;
    let stripped = match kind {
        Kind::Jpeg => strip_jpeg(bytes),
        Kind::Png => strip_png(bytes),
        Kind::Webp => strip_webp(bytes),
    }?;
    Ok((kind, stripped))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripError {
    #[error("not a JPEG, PNG or WebP image")]
    UnknownFormat,
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
}

fn jpeg_error(reason: &'static str) -> Unreadable {
    Unreadable {
        kind: Kind::Jpeg,
        reason,
    }
}

/// Whether a JPEG marker segment is metadata: APP1..APP13, APP15 or COM, except an APP2 that
/// holds the ICC colour profile (`payload` is the segment after its length).
fn jpeg_metadata(marker: u8, payload: &[u8]) -> bool {
    if marker == 0xE2 && payload.starts_with(b"ICC_PROFILE\0") {
        return false;
    }
    matches!(marker, 0xE1..=0xED | 0xEF | 0xFE)
}

/// Start-of-frame markers: SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
fn jpeg_frame(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Copies a JPEG without its metadata segments; see the module documentation.
pub fn strip_jpeg(bytes: &[u8]) -> Result<Vec<u8>, Unreadable> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(jpeg_error("it does not start with SOI"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let mut pos = 2;
    let mut frame = false;
    let mut scan = false;
    loop {
        if pos >= bytes.len() {
            return Err(jpeg_error("it ends before its end-of-image marker"));
        }
        if bytes[pos] != 0xFF {
            return Err(jpeg_error("a marker was expected between segments"));
        }
        // Fill bytes (0xFF) may come before a marker.
        let mut at = pos + 1;
        while at < bytes.len() && bytes[at] == 0xFF {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else {
            return Err(jpeg_error("it ends inside a marker"));
        };
        let after_marker = at + 1;
        match marker {
            0xD9 => {
                if !scan {
                    return Err(jpeg_error("it has no image data before its end"));
                }
                // Whatever follows EOI is not part of the image.
                out.extend_from_slice(&bytes[pos..after_marker]);
                return Ok(out);
            }
            0x00 | 0xD8 => return Err(jpeg_error("a marker is out of place")),
            // Standalone markers: no length.
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&bytes[pos..after_marker]);
                pos = after_marker;
                continue;
            }
            _ => {}
        }
        let Some(length) = bytes.get(after_marker..after_marker + 2) else {
            return Err(jpeg_error("it ends inside a segment's length"));
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 {
            return Err(jpeg_error("a segment's length is too small"));
        }
        let end = after_marker + length;
        if end > bytes.len() {
            return Err(jpeg_error("a segment runs past the end of the file"));
        }
        if !jpeg_metadata(marker, &bytes[after_marker + 2..end]) {
            out.extend_from_slice(&bytes[pos..end]);
        }
        pos = end;
        if jpeg_frame(marker) {
            frame = true;
        }
        if marker == 0xDA {
            if !frame {
                return Err(jpeg_error("its image data comes before its frame header"));
            }
            scan = true;
            // The entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a
            // restart marker; it is copied untouched.
            let mut i = pos;
            loop {
                match bytes.get(i) {
                    None => return Err(jpeg_error("it ends inside its image data")),
                    Some(0xFF) => match bytes.get(i + 1) {
                        None => return Err(jpeg_error("it ends inside its image data")),
                        Some(0x00 | 0xD0..=0xD7) => i += 2,
                        Some(0xFF) => i += 1,
                        Some(_) => break,
                    },
                    Some(_) => i += 1,
                }
            }
            out.extend_from_slice(&bytes[pos..i]);
            pos = i;
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// PNG chunks kept: the critical ones and those that change how the pixels render.
const PNG_KEPT: [&[u8; 4]; 12] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"pHYs", b"bKGD",
];

fn png_error(reason: &'static str) -> Unreadable {
    Unreadable {
        kind: Kind::Png,
        reason,
    }
}

/// Copies a PNG with only its critical and rendering chunks; see the module documentation.
pub fn strip_png(bytes: &[u8]) -> Result<Vec<u8>, Unreadable> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(png_error("its signature is wrong"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut pos = PNG_SIGNATURE.len();
    let mut first = true;
    loop {
        let Some(head) = bytes.get(pos..pos + 8) else {
            return Err(png_error("it ends before its IEND chunk"));
        };
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let length = usize::try_from(length).map_err(|_| png_error("a chunk is too long"))?;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(png_error("a chunk's type is not four letters"));
        }
        if first && &kind != b"IHDR" {
            return Err(png_error("its first chunk is not IHDR"));
        }
        first = false;
        // Length, type, data, CRC.
        let end = pos
            .checked_add(12)
            .and_then(|n| n.checked_add(length))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| png_error("a chunk runs past the end of the file"))?;
        if PNG_KEPT.contains(&&kind) {
            out.extend_from_slice(&bytes[pos..end]);
        }
        pos = end;
        if &kind == b"IEND" {
            return Ok(out);
        }
    }
}

fn webp_error(reason: &'static str) -> Unreadable {
    Unreadable {
        kind: Kind::Webp,
        reason,
    }
}

/// VP8X flag bits of the chunks dropped.
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

/// Copies a WebP without its EXIF and XMP chunks; see the module documentation.
pub fn strip_webp(bytes: &[u8]) -> Result<Vec<u8>, Unreadable> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return Err(webp_error("it is not a RIFF WEBP file"));
    }
    let riff_size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let riff_end = usize::try_from(riff_size)
        .ok()
        .and_then(|size| size.checked_add(8))
        .filter(|&end| end <= bytes.len() && end >= 12)
        .ok_or_else(|| webp_error("its RIFF size does not fit the file"))?;
    let mut chunks = Vec::with_capacity(riff_end - 12);
    let mut pos = 12;
    let mut any = false;
    while pos < riff_end {
        let Some(head) = bytes.get(pos..pos + 8).filter(|_| pos + 8 <= riff_end) else {
            return Err(webp_error("it ends inside a chunk header"));
        };
        let fourcc: [u8; 4] = [head[0], head[1], head[2], head[3]];
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let size = usize::try_from(size).map_err(|_| webp_error("a chunk is too long"))?;
        // Chunks are padded to an even size.
        let end = (pos + 8)
            .checked_add(size + (size & 1))
            .filter(|&end| end <= riff_end)
            .ok_or_else(|| webp_error("a chunk runs past the end of the file"))?;
        match &fourcc {
            b"EXIF" | b"XMP " => {}
            b"VP8X" => {
                if size < 1 {
                    return Err(webp_error("its VP8X chunk is empty"));
                }
                let start = chunks.len();
                chunks.extend_from_slice(&bytes[pos..end]);
                chunks[start + 8] &= !(VP8X_EXIF | VP8X_XMP);
            }
            _ => chunks.extend_from_slice(&bytes[pos..end]),
        }
        any = true;
        pos = end;
    }
    if !any {
        return Err(webp_error("it holds no chunks"));
    }
    let size = u32::try_from(chunks.len() + 4).map_err(|_| webp_error("it is too large"))?;
    let mut out = Vec::with_capacity(chunks.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG marker segment: `FF marker`, the length (counting itself), the payload.
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An EXIF APP1 payload: `Exif\0\0`, a little-endian TIFF header and IFD0 with one entry,
    /// the GPS IFD pointer (tag 0x8825), then a GPS IFD holding a latitude reference.
    fn exif_with_gps() -> Vec<u8> {
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"II*\0");
        tiff.extend_from_slice(&8u32.to_le_bytes());
        // IFD0: one entry, GPSInfo (0x8825, LONG, count 1, offset 26), no next IFD.
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x8825u16.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&26u32.to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        // GPS IFD: GPSLatitudeRef = "N".
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&2u32.to_le_bytes());
        tiff.extend_from_slice(b"N\0\0\0");
        tiff.extend_from_slice(&0u32.to_le_bytes());
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&tiff);
        payload
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// The parts of a small baseline JPEG, metadata segments marked `false` (to be dropped).
    fn jpeg_parts() -> Vec<(bool, Vec<u8>)> {
        let mut sof = vec![8, 0, 16, 0, 16, 3];
        for component in 1..=3u8 {
            sof.extend_from_slice(&[component, 0x11, 0]);
        }
        let mut dqt = vec![0];
        dqt.extend((1..=64u8).map(|q| q.min(50)));
        let mut dht = vec![0x00];
        dht.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        dht.push(0);
        vec![
            (true, vec![0xFF, 0xD8]),
            (true, segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")),
            (false, segment(0xE1, &exif_with_gps())),
            (
                false,
                segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>"),
            ),
            (
                false,
                segment(0xED, b"Photoshop 3.0\0IPTC city Springfield"),
            ),
            (true, segment(0xE2, b"ICC_PROFILE\0\x01\x01profile")),
            (false, segment(0xE2, b"MPF\0II*\0preview of the same photo")),
            (true, segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01")),
            (false, segment(0xFE, b"shot on a school phone")),
            (true, segment(0xDB, &dqt)),
            (true, segment(0xC0, &sof)),
            (true, segment(0xC4, &dht)),
            (true, segment(0xDD, &[0, 4])),
            (true, segment(0xDA, &[1, 1, 0, 0, 63, 0])),
            // Entropy-coded data with a stuffed 0xFF00, a restart marker and a fill byte.
            (
                true,
                vec![0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD9],
            ),
        ]
    }

    #[test]
    fn jpeg_metadata_segments_are_dropped_and_the_rest_is_byte_identical() {
        let parts = jpeg_parts();
        let original: Vec<u8> = parts.iter().flat_map(|(_, p)| p.clone()).collect();
        let expected: Vec<u8> = parts
            .iter()
            .filter(|(keep, _)| *keep)
            .flat_map(|(_, p)| p.clone())
            .collect();
        assert!(contains(&original, b"Exif\0\0"));
        assert!(contains(&original, &0x8825u16.to_le_bytes()));

        let (kind, stripped) = strip(&original).unwrap();
        assert_eq!(kind, Kind::Jpeg);
        assert_eq!(stripped, expected);
        for gone in [
            &b"Exif"[..],
            &0x8825u16.to_le_bytes(),
            b"xmpmeta",
            b"Springfield",
            b"school phone",
            b"MPF",
        ] {
            assert!(!contains(&stripped, gone), "{gone:?} is still there");
        }
        // Stripping again changes nothing.
        assert_eq!(strip_jpeg(&stripped).unwrap(), stripped);
    }

    #[test]
    fn data_after_the_end_of_a_jpeg_is_dropped_and_scans_between_tables_kept() {
        let mut parts = jpeg_parts();
        // A progressive-style second table and scan after the first scan's data.
        let eoi = parts.pop().unwrap().1;
        let first_scan = eoi[..eoi.len() - 2].to_vec();
        parts.push((true, first_scan));
        parts.push((
            true,
            segment(
                0xC4,
                &[0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
            ),
        ));
        parts.push((false, segment(0xE1, &exif_with_gps())));
        parts.push((true, segment(0xDA, &[1, 1, 0, 0, 63, 0])));
        parts.push((true, vec![0x77, 0xFF, 0x00, 0xFF, 0xD9]));
        parts.push((false, b"trailing video of the classroom".to_vec()));
        let original: Vec<u8> = parts.iter().flat_map(|(_, p)| p.clone()).collect();
        let expected: Vec<u8> = parts
            .iter()
            .filter(|(keep, _)| *keep)
            .flat_map(|(_, p)| p.clone())
            .collect();
        assert_eq!(strip_jpeg(&original).unwrap(), expected);
    }

    #[test]
    fn malformed_jpegs_are_refused() {
        let good: Vec<u8> = jpeg_parts().into_iter().flat_map(|(_, p)| p).collect();
        // Cut anywhere, it no longer reaches its end-of-image marker.
        for cut in [3, 4, 5, 20, 40, good.len() - 3, good.len() - 1] {
            let err = strip_jpeg(&good[..cut]).unwrap_err();
            assert_eq!(err.kind, Kind::Jpeg, "{cut}");
            assert!(err.to_string().starts_with("not a readable JPEG"), "{err}");
        }
        // A segment length running past the end.
        let mut long = vec![0xFF, 0xD8];
        long.extend_from_slice(&[0xFF, 0xE1, 0xFF, 0xFF, 1, 2, 3]);
        assert!(strip_jpeg(&long).is_err());
        // A length below 2.
        assert!(strip_jpeg(&[0xFF, 0xD8, 0xFF, 0xDB, 0, 1, 0xFF, 0xD9]).is_err());
        // Bytes where a marker belongs.
        assert!(strip_jpeg(&[0xFF, 0xD8, 0x00, 0x11, 0xFF, 0xD9]).is_err());
        // No image data at all.
        assert!(strip_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
        // A scan without a frame header.
        let mut no_frame = vec![0xFF, 0xD8];
        no_frame.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        no_frame.extend_from_slice(&[1, 0xFF, 0xD9]);
        assert!(strip_jpeg(&no_frame).is_err());
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut covered = kind.to_vec();
        covered.extend_from_slice(data);
        out.extend_from_slice(&crc32(&covered).to_be_bytes());
        out
    }

    fn png_parts() -> Vec<(bool, Vec<u8>)> {
        let ihdr = [0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0];
        vec![
            (true, PNG_SIGNATURE.to_vec()),
            (true, chunk(b"IHDR", &ihdr)),
            (false, chunk(b"tEXt", b"Author\0Ms Lopez")),
            (false, chunk(b"eXIf", &exif_with_gps()[6..])),
            (true, chunk(b"gAMA", &45455u32.to_be_bytes())),
            (true, chunk(b"sRGB", &[0])),
            (true, chunk(b"pHYs", &[0, 0, 11, 19, 0, 0, 11, 19, 1])),
            (false, chunk(b"tIME", &[7, 234, 5, 4, 10, 30, 0])),
            (
                false,
                chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>"),
            ),
            (false, chunk(b"zTXt", b"Comment\0\0compressed")),
            (
                true,
                chunk(b"IDAT", &[0x78, 0x9C, 0x63, 0xF8, 0x0F, 0, 1, 1, 1, 0]),
            ),
            (true, chunk(b"IEND", &[])),
            (false, b"appended after the end".to_vec()),
        ]
    }

    #[test]
    fn png_keeps_critical_and_rendering_chunks_only() {
        let parts = png_parts();
        let original: Vec<u8> = parts.iter().flat_map(|(_, p)| p.clone()).collect();
        let expected: Vec<u8> = parts
            .iter()
            .filter(|(keep, _)| *keep)
            .flat_map(|(_, p)| p.clone())
            .collect();
        let (kind, stripped) = strip(&original).unwrap();
        assert_eq!(kind, Kind::Png);
        assert_eq!(stripped, expected);
        assert!(!contains(&stripped, b"Lopez"));
        assert!(!contains(&stripped, b"eXIf"));
        assert!(!contains(&stripped, b"tIME"));
        // Every chunk left still carries a valid CRC.
        let mut pos = 8;
        while pos < stripped.len() {
            let length = usize::try_from(u32::from_be_bytes(
                stripped[pos..pos + 4].try_into().unwrap(),
            ))
            .unwrap();
            let covered = &stripped[pos + 4..pos + 8 + length];
            let crc = u32::from_be_bytes(
                stripped[pos + 8 + length..pos + 12 + length]
                    .try_into()
                    .unwrap(),
            );
            assert_eq!(crc32(covered), crc);
            pos += 12 + length;
        }
        assert_eq!(pos, stripped.len());
    }

    #[test]
    fn malformed_pngs_are_refused() {
        let good: Vec<u8> = png_parts()
            .into_iter()
            .filter(|(keep, _)| *keep)
            .flat_map(|(_, p)| p)
            .collect();
        for cut in [8, 12, 20, 33, good.len() - 1] {
            let err = strip_png(&good[..cut]).unwrap_err();
            assert!(err.to_string().starts_with("not a readable PNG"), "{err}");
        }
        // The first chunk must be IHDR.
        let mut no_header = PNG_SIGNATURE.to_vec();
        no_header.extend(chunk(b"IEND", &[]));
        assert!(strip_png(&no_header).is_err());
        // A chunk length past the end.
        let mut long = PNG_SIGNATURE.to_vec();
        long.extend_from_slice(&[0x7F, 0xFF, 0xFF, 0xFF]);
        long.extend_from_slice(b"IHDR");
        assert!(strip_png(&long).is_err());
    }

    fn riff_chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = fourcc.to_vec();
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn webp_drops_exif_and_xmp_and_fixes_flags_and_size() {
        // VP8X: flags (ICC 0x20, EXIF 0x08, XMP 0x04), reserved, canvas 1x1.
        let vp8x = |flags: u8| riff_chunk(b"VP8X", &[flags, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let iccp = riff_chunk(b"ICCP", b"icc profile");
        let image = riff_chunk(b"VP8L", &[0x2F, 0, 0, 0, 0x10, 0x07]);
        let exif = riff_chunk(b"EXIF", &exif_with_gps()[6..]);
        let xmp = riff_chunk(b"XMP ", b"<x:xmpmeta>Springfield</x:xmpmeta>");
        let original = riff(&[vp8x(0x2C), iccp.clone(), image.clone(), exif, xmp]);
        let expected = riff(&[vp8x(0x20), iccp, image.clone()]);
        let (kind, stripped) = strip(&original).unwrap();
        assert_eq!(kind, Kind::Webp);
        assert_eq!(stripped, expected);
        assert!(!contains(&stripped, b"Springfield"));
        assert!(!contains(&stripped, &0x8825u16.to_le_bytes()));

        // A simple WebP has nothing to drop.
        let simple = riff(&[image]);
        assert_eq!(strip_webp(&simple).unwrap(), simple);
    }

    #[test]
    fn malformed_webps_are_refused() {
        let image = riff_chunk(b"VP8L", &[0x2F, 0, 0, 0, 0x10, 0x07]);
        let good = riff(&[image]);
        // A RIFF size past the end of the file.
        let mut short = good.clone();
        short.truncate(good.len() - 2);
        assert!(strip_webp(&short).is_err());
        // A chunk size past the RIFF's end.
        let mut long = good.clone();
        long[16] = 0xFF;
        assert!(strip_webp(&long).is_err());
        // No chunks.
        assert!(strip_webp(&riff(&[])).is_err());
        let err = strip_webp(&short).unwrap_err();
        assert!(err.to_string().starts_with("not a readable WebP"), "{err}");
    }

    #[test]
    fn formats_are_recognised_by_their_magic_bytes() {
        assert_eq!(Kind::detect(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(Kind::detect(PNG_SIGNATURE), Some(Kind::Png));
        assert_eq!(Kind::detect(b"RIFF\0\0\0\0WEBPVP8 "), Some(Kind::Webp));
        assert_eq!(Kind::detect(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(Kind::detect(b"GIF89a"), None);
        assert_eq!(Kind::detect(b"plain text"), None);
        assert_eq!(Kind::detect(&[]), None);
        assert_eq!(strip(b"plain text"), Err(StripError::UnknownFormat));
    }
}
