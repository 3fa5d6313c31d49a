//! Photos of student work while notes flow (issue #14): in each lab, phones post notes on the
//! `labs` schedule (one per interval, all phones spread evenly over it) while a projector
//! records when each arrives, as `labs` does.
//!
//! - Phase A, the first half of `--duration`: notes only.
//! - Phase B, the second half: the same notes, and every phone starts uploading its photos at
//!   the same moment, one after another (`PUT /api/labs/{labId}/photos/{sha256}` with its own
//!   token, one HTTP/1.1 connection each). The notes go on until the last upload is answered,
//!   if that comes after the window.
//!
//! A note belongs to the phase it was committed in; the notes committed between the first
//! upload's start and the last upload's answer are also reported apart, as the notes that met
//! the uploads. Every upload must be answered 201 with the size the server stored, which is
//! the photo less the EXIF segment it carries (the server strips it); anything else fails the
//! run with the reason.
//!
//! Each photo is a JPEG made up here, different for every phone and photo: a baseline header
//! (JFIF, an EXIF segment, a quantization table, a frame, Huffman tables and a scan header),
//! pseudo-random entropy-coded bytes with every 0xFF stuffed, and the end-of-image marker. The
//! server reads JPEG segments without decoding, so this is as good as a camera's for it, and
//! costs nothing to make.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use crate::cli::Photos;
use crate::http;
use crate::lab_run::{connect_labs, Measure, NoteFlow, Plan};
use crate::phone::{ensure_positive, Target};
use crate::proc_stats::{Meter, Usage};
use crate::report::{mib, round, secs, Percentiles, Report};
use crate::text::Rng;
use crate::Env;

/// The most photo bytes one run holds in memory (every photo is made before it is measured).
const MAX_PHOTO_BYTES_IN_ALL: usize = 1 << 30;

/// Where the photos' seeds start: apart from the notes' (one per phone, from 0).
const PHOTO_SEEDS: u64 = 1 << 40;

/// Failed uploads named in the failure message; the count covers the rest.
const FAILURES_SHOWN: usize = 3;

/// One photo, ready to upload.
struct Photo {
    /// The SHA-256 of its bytes, in lowercase hex.
    id: String,
    body: JpegBody,
}

/// A photo's bytes and the length of its EXIF segment, which the server strips.
pub struct JpegBody {
    pub bytes: Vec<u8>,
    /// The APP1 segment's length, marker included.
    pub exif_segment: usize,
}

/// What one upload got.
struct Upload {
    started: Instant,
    answered: Instant,
    bytes: usize,
    /// Why it failed; `None` when stored as expected.
    failure: Option<String>,
}

/// One phone's photos and what it needs to upload them.
struct PhoneUploads {
    name: String,
    lab_id: String,
    token: String,
    photos: Vec<Photo>,
}

pub async fn run(args: &Photos, env: &Env) -> anyhow::Result<Report> {
    ensure_positive("the number of labs", args.labs)?;
    ensure_positive("the number of phones", args.phones)?;
    ensure_positive("the number of photos per phone", args.photos_per_phone)?;
    ensure_positive("the photo size in kB", args.photo_kb)?;
    if args.interval.is_zero() {
        bail!("--interval must be more than 0: notes flow on a schedule here");
    }
    let notes_per_phone =
        usize::try_from(args.duration.as_nanos() / args.interval.as_nanos()).unwrap_or(usize::MAX);
    if notes_per_phone < 2 {
        bail!(
            "--duration ({:?}) must hold at least two --interval ({:?}): one note for each phase",
            args.duration,
            args.interval
        );
    }
    let Target::Labboard { authority, .. } = env.target.as_ref() else {
        bail!(
            "photos needs a labboard (--start-labboard or --labboard): photos go through its API"
        );
    };
    let photo_bytes = args.photo_kb.saturating_mul(1000);
    let photos_in_all = args
        .labs
        .saturating_mul(args.phones)
        .saturating_mul(args.photos_per_phone);
    let bytes_in_all = photos_in_all.saturating_mul(photo_bytes);
    if bytes_in_all > MAX_PHOTO_BYTES_IN_ALL {
        bail!(
            "{photos_in_all} photos of {} kB are {}, more than the {} one run may hold",
            args.photo_kb,
            mib((bytes_in_all / 1024) as u64),
            mib((MAX_PHOTO_BYTES_IN_ALL / 1024) as u64)
        );
    }
    let plan = Plan {
        labs: args.labs,
        observers: args.phones,
        notes_per_observer: notes_per_phone,
        interval: args.interval,
        min_chars: args.size.min_chars,
        max_chars: args.size.max_chars,
    };
    let mut report = Report::new(
        "photos",
        format!(
            "{} lab(s) x {} phones + 1 projector, a note each every {:?} for {:?}; from half-way \
             each phone uploads {} photos of {} kB, one after another ({})",
            args.labs,
            args.phones,
            args.interval,
            args.duration,
            args.photos_per_phone,
            args.photo_kb,
            env.target.describe()
        ),
    );
    report.field(
        "params",
        json!({
            "labs": args.labs,
            "phones": args.phones,
            "photosPerPhone": args.photos_per_phone,
            "photoBytes": photo_bytes,
            "intervalMs": args.interval.as_millis(),
            "durationMs": args.duration.as_millis(),
            "notesPerPhone": notes_per_phone,
            "minChars": args.size.min_chars,
            "maxChars": args.size.max_chars,
        }),
    );

    let setup = Meter::start(env.server)?;
    let labs = connect_labs(&plan, env).await?;
    let mut phones = Vec::new();
    for (lab_index, lab) in labs.iter().enumerate() {
        let lab_id = lab.lab.lab_id.clone().context("a labboard lab has an id")?;
        for (index, phone) in lab.observers.iter().enumerate() {
            let token = phone
                .token
                .clone()
                .context("a labboard phone has a token")?;
            let photos = (0..args.photos_per_phone)
                .map(|k| {
                    let label = format!("Bench photo {k} of {}", phone.name);
                    let photo = (lab_index * args.phones + index) * args.photos_per_phone + k;
                    let seed = PHOTO_SEEDS + u64::try_from(photo)?;
                    let body = jpeg_body(seed, photo_bytes, &label)?;
                    Ok(Photo {
                        id: sha256_hex(&body.bytes),
                        body,
                    })
                })
                .collect::<anyhow::Result<Vec<Photo>>>()?;
            phones.push(PhoneUploads {
                name: phone.name.clone(),
                lab_id: lab_id.clone(),
                token,
                photos,
            });
        }
    }
    let setup = setup.finish()?;

    let measure = Measure::start(env)?;
    let meter_a = Meter::start(env.server)?;
    let (uploads_done, until) = watch::channel(false);
    let flow = NoteFlow::start(&plan, &labs, Some(until));
    let phase_a = flow.start;
    let phase_b = phase_a + args.duration / 2;
    sleep_until(phase_b.into()).await;
    let usage_a = meter_a.finish()?;
    let meter_b = Meter::start(env.server)?;

    // Every phone at once, each one photo after another.
    let mut uploaders = JoinSet::new();
    for phone in phones {
        uploaders.spawn(upload_photos(authority.clone(), phone));
    }
    let mut uploads = Vec::with_capacity(photos_in_all);
    while let Some(done) = uploaders.join_next().await {
        uploads.extend(done.context("an uploading task panicked")?);
    }
    uploads_done.send_replace(true);

    let delivery = flow.finish(env.settle).await?;
    let usage_b = meter_b.finish()?;
    let used = measure
        .settle(&mut report, &plan, labs, env, &delivery)
        .await?;
    phase_row(
        &mut report,
        "phase A: notes only",
        "phaseA",
        &delivery.latencies_committed(phase_a..phase_b),
        Some(&usage_a),
    );
    phase_row(
        &mut report,
        "phase B: with uploads",
        "phaseB",
        &delivery.latencies_committed(phase_b..),
        Some(&usage_b),
    );
    let first_start = uploads.iter().map(|u| u.started).min();
    let last_answer = uploads.iter().map(|u| u.answered).max();
    let during = match (first_start, last_answer) {
        (Some(from), Some(to)) => delivery.latencies_committed(from..=to),
        _ => Vec::new(),
    };
    phase_row(
        &mut report,
        "notes while uploading",
        "duringUploads",
        &during,
        None,
    );
    upload_rows(&mut report, &uploads, first_start, last_answer);
    used.report(&mut report, &setup);
    Ok(report)
}

/// A row and a field for the latency of the notes committed in one phase.
fn phase_row(
    report: &mut Report,
    label: &str,
    key: &str,
    latencies: &[Duration],
    usage: Option<&Usage>,
) {
    let percentiles = Percentiles::of(latencies);
    let cpu = usage.and_then(|usage| Some((usage.server_cpu?, usage.wall)));
    report.row(
        label,
        format!(
            "{} {}, p50/p95/p99/max {}{}",
            latencies.len(),
            if latencies.len() == 1 {
                "note"
            } else {
                "notes"
            },
            percentiles
                .as_ref()
                .map_or_else(|| "n/a".to_owned(), Percentiles::line),
            cpu.map_or_else(String::new, |(cpu, wall)| format!(
                "; server CPU {:.2} s over {:.1} s",
                cpu.as_secs_f64(),
                wall.as_secs_f64()
            )),
        ),
    );
    report.field(
        key,
        json!({
            "notes": latencies.len(),
            "latencyMs": percentiles.as_ref().map_or(serde_json::Value::Null, Percentiles::json),
            "serverCpuS": cpu.map(|(cpu, _)| secs(cpu)),
            "wallS": usage.map(|usage| secs(usage.wall)),
        }),
    );
}

/// The rows, fields and failure of the uploads.
fn upload_rows(
    report: &mut Report,
    uploads: &[Upload],
    first_start: Option<Instant>,
    last_answer: Option<Instant>,
) {
    let failed: Vec<&str> = uploads
        .iter()
        .filter_map(|upload| upload.failure.as_deref())
        .collect();
    let stored = uploads.len() - failed.len();
    let bytes: usize = uploads.iter().map(|upload| upload.bytes).sum();
    let wall = match (first_start, last_answer) {
        (Some(from), Some(to)) => to.saturating_duration_since(from),
        _ => Duration::ZERO,
    };
    let megabytes = bytes as f64 / 1e6;
    let throughput = if wall.is_zero() {
        0.0
    } else {
        megabytes / wall.as_secs_f64()
    };
    let latencies: Vec<Duration> = uploads
        .iter()
        .map(|upload| upload.answered.saturating_duration_since(upload.started))
        .collect();
    let percentiles = Percentiles::of(&latencies);
    report.row(
        "uploads",
        format!(
            "{stored} of {} stored (201), {megabytes:.1} MB sent{}",
            uploads.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(", {} FAILED", failed.len())
            }
        ),
    );
    report.row(
        "upload throughput",
        format!(
            "{throughput:.1} MB/s ({megabytes:.1} MB from the first upload's start to the last \
             answer: {:.2} s)",
            wall.as_secs_f64()
        ),
    );
    report.row(
        "upload latency p50/p99",
        percentiles.as_ref().map_or_else(
            || "n/a".to_owned(),
            |p| format!("{:.1} / {:.1} ms (max {:.1})", p.p50, p.p99, p.max),
        ),
    );
    report.field(
        "uploads",
        json!({
            "count": uploads.len(),
            "stored": stored,
            "failed": failed.len(),
            "bytes": bytes,
            "wallS": secs(wall),
            "megabytesPerS": round(throughput),
            "latencyMs": percentiles.as_ref().map_or(serde_json::Value::Null, Percentiles::json),
        }),
    );
    if !failed.is_empty() {
        let shown: Vec<&str> = failed.iter().take(FAILURES_SHOWN).copied().collect();
        let more = failed.len() - shown.len();
        report.fail(format!(
            "UPLOAD FAILED: {} of {} photos were not stored as expected: {}{}",
            failed.len(),
            uploads.len(),
            shown.join("; "),
            if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            }
        ));
    }
}

/// One phone's photos, one after another, each checked: 201, and stored without its EXIF
/// segment.
async fn upload_photos(authority: String, phone: PhoneUploads) -> Vec<Upload> {
    let mut uploads = Vec::with_capacity(phone.photos.len());
    for (index, photo) in phone.photos.iter().enumerate() {
        let path = format!("/api/labs/{}/photos/{}", phone.lab_id, photo.id);
        let started = Instant::now();
        let answer = http::request_bytes(
            &authority,
            "PUT",
            &path,
            Some(&phone.token),
            Some(("image/jpeg", &photo.body.bytes)),
        )
        .await;
        let answered = Instant::now();
        let expected = photo.body.bytes.len() - photo.body.exif_segment;
        let failure = match answer {
            Err(err) => Some(format!("{err:#}")),
            Ok(response) if response.status != 201 => Some(format!(
                "HTTP {}: {}",
                response.status,
                response.body.trim()
            )),
            Ok(response) => match response.json().map(|json| json["bytes"].as_u64()) {
                Ok(Some(stored)) if stored == expected as u64 => None,
                Ok(Some(stored)) => Some(format!(
                    "stored {stored} bytes, not the {expected} of the photo without its EXIF \
                     segment"
                )),
                Ok(None) => Some(format!("no `bytes` in the answer {}", response.body)),
                Err(err) => Some(format!("{err:#}")),
            },
        };
        uploads.push(Upload {
            started,
            answered,
            bytes: photo.body.bytes.len(),
            failure: failure.map(|why| format!("{}, photo {}: {why}", phone.name, index + 1)),
        });
    }
    uploads
}

/// The SHA-256 of `bytes` in lowercase hex: a photo's id.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A baseline JPEG of exactly `size` bytes, carrying `label` in an EXIF segment and entropy-coded
/// bytes drawn from `seed`: different seeds give different photos.
pub fn jpeg_body(seed: u64, size: usize, label: &str) -> anyhow::Result<JpegBody> {
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&[0xFF, 0xD8]); // SOI
                                            // APP0: JFIF 1.1, no density unit, 1:1, no thumbnail.
    segment(
        &mut bytes,
        0xE0,
        &[b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0],
    );
    let exif_start = bytes.len();
    segment(&mut bytes, 0xE1, &exif(label));
    let exif_segment = bytes.len() - exif_start;
    // DQT: table 0, 8-bit, 64 entries.
    let mut dqt = vec![0x00];
    dqt.extend((1..=64u8).map(|q| q.div_ceil(4)));
    segment(&mut bytes, 0xDB, &dqt);
    // SOF0: 8-bit, 1200 x 1600, one component (id 1, 1x1 sampling, table 0).
    segment(
        &mut bytes,
        0xC0,
        &[8, 0x04, 0xB0, 0x06, 0x40, 1, 1, 0x11, 0],
    );
    // DHT: the standard luminance DC table (class 0, id 0) and a two-code AC table (class 1).
    let mut dc = vec![0x00, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    dc.extend(0..=11u8);
    segment(&mut bytes, 0xC4, &dc);
    let mut ac = vec![0x10, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    ac.extend([0x00, 0x01]);
    segment(&mut bytes, 0xC4, &ac);
    // SOS: one component (1, tables 0/0), spectral selection 0..63, no approximation.
    segment(&mut bytes, 0xDA, &[1, 1, 0x00, 0, 63, 0]);
    if size < bytes.len() + 3 {
        bail!(
            "a photo of {size} bytes is too small: its headers alone take {}",
            bytes.len() + 2
        );
    }
    // Entropy-coded data: every 0xFF followed by a stuffed 0x00, so no marker appears.
    let end = size - 2;
    let mut rng = Rng::new(seed);
    while bytes.len() < end {
        for byte in rng.next_u64().to_le_bytes() {
            if bytes.len() == end {
                break;
            }
            if byte != 0xFF {
                bytes.push(byte);
            } else if bytes.len() + 2 <= end {
                bytes.extend_from_slice(&[0xFF, 0x00]);
            } else {
                bytes.push(0x00);
            }
        }
    }
    bytes.extend_from_slice(&[0xFF, 0xD9]); // EOI
    Ok(JpegBody {
        bytes,
        exif_segment,
    })
}

/// Appends a marker segment: 0xFF, `marker`, its length (counting itself), `payload`.
fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    let length = u16::try_from(payload.len() + 2).expect("a segment's payload fits in 64 KiB");
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An EXIF payload as cameras write it: big-endian TIFF with one IFD holding the orientation
/// (upright) and an image description.
fn exif(label: &str) -> Vec<u8> {
    let mut description: Vec<u8> = label.bytes().filter(u8::is_ascii).take(200).collect();
    description.push(0);
    let count = u32::try_from(description.len()).expect("at most 201 bytes");
    // TIFF header (8) + entry count (2) + two entries (24) + next-IFD offset (4).
    let description_offset: u32 = 8 + 2 + 24 + 4;
    let mut out = b"Exif\0\0".to_vec();
    out.extend_from_slice(b"MM\x00\x2A\x00\x00\x00\x08");
    out.extend_from_slice(&2u16.to_be_bytes());
    // 0x0112 Orientation, SHORT, 1 value: 1 (upright), left-aligned in the value field.
    out.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0x00, 0x01, 0, 0]);
    // 0x010E ImageDescription, ASCII, its bytes after the IFD.
    out.extend_from_slice(&[0x01, 0x0E, 0x00, 0x02]);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&description_offset.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&description);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marker segments of a JPEG up to its scan, checking their lengths, and where the
    /// entropy-coded data starts.
    fn segments(bytes: &[u8]) -> (Vec<u8>, usize) {
        let mut markers = Vec::new();
        let mut pos = 2;
        loop {
            assert_eq!(bytes[pos], 0xFF, "a marker at {pos}");
            let marker = bytes[pos + 1];
            let length = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
            assert!(length >= 2 && pos + 2 + length <= bytes.len());
            markers.push(marker);
            pos += 2 + length;
            if marker == 0xDA {
                return (markers, pos);
            }
        }
    }

    #[test]
    fn photos_are_jpegs_of_the_asked_size_and_all_different() {
        let mut ids = std::collections::HashSet::new();
        for (seed, size) in [(1, 300_000), (2, 300_000), (3, 300_001), (4, 2_000)] {
            let body = jpeg_body(seed, size, "Bench photo 1 of Observer 1-1").unwrap();
            let bytes = &body.bytes;
            assert_eq!(bytes.len(), size);
            assert_eq!(&bytes[..2], &[0xFF, 0xD8], "starts with SOI");
            assert_eq!(&bytes[size - 2..], &[0xFF, 0xD9], "ends with EOI");
            let (markers, scan) = segments(bytes);
            assert_eq!(markers, [0xE0, 0xE1, 0xDB, 0xC0, 0xC4, 0xC4, 0xDA]);
            // The EXIF segment is the second, right after SOI and APP0 (2 + 18 bytes).
            assert_eq!(&bytes[20..22], &[0xFF, 0xE1]);
            assert_eq!(&bytes[24..30], b"Exif\0\0");
            let exif_length = usize::from(u16::from_be_bytes([bytes[22], bytes[23]]));
            assert_eq!(body.exif_segment, exif_length + 2);
            // No marker in the entropy-coded data: every 0xFF is a stuffed 0xFF00.
            let data = &bytes[scan..size - 2];
            assert!(data.len() > size / 2);
            for (at, pair) in data.windows(2).enumerate() {
                if pair[0] == 0xFF {
                    assert_eq!(pair[1], 0x00, "unstuffed 0xFF at {}", scan + at);
                }
            }
            assert_ne!(data.last(), Some(&0xFF));
            assert!(ids.insert(sha256_hex(bytes)), "seed {seed} repeats a photo");
        }
        assert_eq!(
            jpeg_body(9, 300_000, "a").unwrap().bytes,
            jpeg_body(9, 300_000, "a").unwrap().bytes,
            "the same seed makes the same photo"
        );
    }

    #[test]
    fn a_photo_smaller_than_its_headers_is_refused() {
        let err = jpeg_body(1, 100, "Bench photo").err().expect("too small");
        assert!(err.to_string().contains("too small"), "{err}");
    }

    #[test]
    fn ids_are_the_sha256_in_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
