//! The research export of a lab's board: de-identified tables of its notes, time-outs,
//! agreements and next steps, as JSON or as RFC 4180 CSV.
//!
//! The API reads the board as its actor holds it ([`crate::registry::Registry::read`]) and hands
//! the saved bytes here. Nothing that names a person leaves: authors become "Observer 3"
//! (numbered by their first note, then by their first time-out or next step), children become
//! "Child A" (in the order they were added), and every child alias in a text is replaced by its
//! pseudonym. Lab details (title, school, …), display names, aliases, join codes, keys and
//! tokens are never written. Notes, time-outs and agreements get ids that are a hash of the lab
//! and the board's own id, so they stay the same in every export of the lab.
//!
//! The zip export ([`archive`]) is the raw record instead: the board as saved, the research
//! data beside it, and every photo of the lab with a manifest of which notes show it.

use std::collections::{BTreeMap, HashMap};

use automerge::Automerge;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::boardread::{Agreement, Board, NextStep, Note, Timeout};
use crate::labs::Role;
use crate::photos::PhotoReader;
use crate::storage::StorageError;
use crate::zipfile::{TooLarge, ZipWriter};

pub use crate::boardread::{NoteCounts, DEFAULT_PICK_LIMIT};

/// Hex digits of the hash in a note, time-out or agreement id: 40 bits, so that two items of
/// one lab get the same id with a chance of about one in a million even with 1,000 notes.
const ID_HEX_DIGITS: usize = 10;

/// Longest file-name stem made from a lab's title.
const MAX_FILE_STEM_CHARS: usize = 60;

/// What can be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Automerge,
    /// The lab's printable record (see [`crate::record`]).
    Html,
    /// The board, the research data and every photo of the lab in one zip (see [`archive`]).
    Zip,
}

impl Format {
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        match text {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "automerge" => Ok(Self::Automerge),
            "html" => Ok(Self::Html),
            "zip" => Ok(Self::Zip),
            other => Err(ExportError::UnknownFormat(other.to_owned())),
        }
    }
}

/// One table of the research export (a CSV file each; sections of the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Notes,
    Timeouts,
    Agreements,
    NextSteps,
}

impl Table {
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        match text {
            "notes" => Ok(Self::Notes),
            "timeouts" => Ok(Self::Timeouts),
            "agreements" => Ok(Self::Agreements),
            "nextSteps" => Ok(Self::NextSteps),
            other => Err(ExportError::UnknownTable(other.to_owned())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Notes => "notes",
            Self::Timeouts => "timeouts",
            Self::Agreements => "agreements",
            Self::NextSteps => "nextSteps",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("unknown export format `{0}`; use json, csv, automerge, html or zip")]
    UnknownFormat(String),
    #[error("unknown table `{0}`; use notes, timeouts, agreements or nextSteps")]
    UnknownTable(String),
    #[error("the stored board could not be loaded: {0}")]
    Load(String),
    #[error("the lab's photos could not be read: {0}")]
    Photos(#[from] StorageError),
    /// A photo listed a moment before could not be read: only deleting the lab removes photos.
    #[error("photo {0} is gone: the lab was deleted while it was exported")]
    PhotoGone(String),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

/// The de-identified research data of one lab.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Research {
    pub notes: Vec<NoteRow>,
    pub timeouts: Vec<TimeoutRow>,
    pub agreements: Vec<AgreementRow>,
    pub next_steps: Vec<NextStepRow>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteRow {
    pub id: String,
    pub author: String,
    pub role: String,
    pub category: String,
    pub phase: String,
    pub minute: Option<i64>,
    pub time: String,
    pub timeout: String,
    pub cluster: String,
    pub pinned: bool,
    pub highlighted: bool,
    pub hidden: bool,
    pub reactions: usize,
    pub picks: usize,
    pub children: Vec<String>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutRow {
    pub id: String,
    pub phase: String,
    pub called_by: String,
    pub role: String,
    pub started_at: String,
    pub ended_at: String,
    /// Whole seconds from start to end; `None` while it runs.
    pub seconds: Option<i64>,
    /// Notes written during it.
    pub notes: usize,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementRow {
    pub id: String,
    pub phase: String,
    pub owner: String,
    pub time: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextStepRow {
    pub id: String,
    pub author: String,
    pub role: String,
    pub phase: String,
    pub time: String,
    pub text: String,
}

impl Research {
    /// Reads the board saved in `bytes`. `roles` says which author ids a token granted which
    /// role; an author it does not know is "unknown".
    pub fn of_saved(
        lab_id: &str,
        bytes: &[u8],
        roles: &HashMap<String, Role>,
    ) -> Result<Self, ExportError> {
        Ok(Self::of(lab_id, &crate::boardread::load(bytes)?, roles))
    }

    /// Reads the board; whatever is missing or of another type reads as absent.
    pub fn of(lab_id: &str, doc: &Automerge, roles: &HashMap<String, Role>) -> Self {
        let board = Board::read(doc);
        let mut people = People::default();
        let mut notes_by_time: Vec<&Note> = board.notes.iter().collect();
        notes_by_time.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for note in &notes_by_time {
            people.author(&note.author_id, &note.author_name);
        }
        let mut timeouts_by_time: Vec<&Timeout> = board.timeouts.iter().collect();
        timeouts_by_time.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        let mut steps_by_time: Vec<&NextStep> = board.next_steps.iter().collect();
        steps_by_time.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut later: Vec<(i64, &str, &str)> = timeouts_by_time
            .iter()
            .map(|t| (t.started_at, t.called_by_id.as_str(), t.called_by.as_str()))
            .chain(
                steps_by_time
                    .iter()
                    .map(|s| (s.created_at, s.author_id.as_str(), s.author_name.as_str())),
            )
            .collect();
        later.sort();
        for (_, id, name) in later {
            people.author(id, name);
        }
        let children = Children::of(&board);
        let role_of = |author_id: &str| {
            roles
                .get(author_id)
                .map_or("unknown", |role| match role {
                    Role::Facilitator => "facilitator",
                    Role::Observer => "observer",
                })
                .to_owned()
        };
        // Labels are the facilitator's free text, so aliases are replaced in them too.
        let label = |labels: &HashMap<String, String>, id: &str| {
            labels
                .get(id)
                .map(|text| children.scrub(text))
                .unwrap_or_default()
        };
        let phase = |id: &str| label(&board.phases, id);
        let picks = board.pick_counts();

        let notes = notes_by_time
            .iter()
            .map(|note| NoteRow {
                id: stable_id("N", lab_id, &note.id),
                author: people.pseudonym(&note.author_id),
                role: role_of(&note.author_id),
                category: label(&board.categories, &note.category),
                phase: phase(&note.phase),
                minute: note.minute,
                time: iso_time(note.created_at),
                timeout: if note.timeout_id.is_empty() {
                    String::new()
                } else {
                    stable_id("T", lab_id, &note.timeout_id)
                },
                cluster: label(&board.clusters, &note.cluster_id),
                pinned: note.pinned,
                highlighted: note.highlighted,
                hidden: note.hidden,
                reactions: note.reactions,
                picks: picks.get(note.id.as_str()).copied().unwrap_or(0),
                children: note
                    .children
                    .iter()
                    .map(|c| children.pseudonym(c))
                    .collect(),
                text: children.scrub(&note.text),
            })
            .collect();
        let timeouts = timeouts_by_time
            .iter()
            .map(|t| TimeoutRow {
                id: stable_id("T", lab_id, &t.id),
                phase: phase(&t.phase),
                called_by: people.pseudonym(&t.called_by_id),
                role: role_of(&t.called_by_id),
                started_at: iso_time(t.started_at),
                ended_at: t.ended_at.map(iso_time).unwrap_or_default(),
                seconds: t
                    .ended_at
                    .map(|end| end.saturating_sub(t.started_at) / 1000),
                notes: board.notes.iter().filter(|n| n.timeout_id == t.id).count(),
                note: children.scrub(&t.note),
            })
            .collect();
        let mut agreements_in_order: Vec<&Agreement> = board.agreements.iter().collect();
        agreements_in_order.sort_by(|a, b| {
            a.order
                .total_cmp(&b.order)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        let agreements = agreements_in_order
            .iter()
            .map(|a| AgreementRow {
                id: stable_id("A", lab_id, &a.id),
                phase: phase(&a.phase),
                owner: people.owner(&a.owner),
                time: iso_time(a.created_at),
                text: children.scrub(&a.text),
            })
            .collect();
        let next_steps = steps_by_time
            .iter()
            .map(|s| NextStepRow {
                id: stable_id("S", lab_id, &s.id),
                author: people.pseudonym(&s.author_id),
                role: role_of(&s.author_id),
                phase: phase(&s.phase),
                time: iso_time(s.created_at),
                text: children.scrub(&s.text),
            })
            .collect();
        Self {
            notes,
            timeouts,
            agreements,
            next_steps,
        }
    }

    /// One table as CSV (RFC 4180: CRLF line ends, a header row).
    pub fn csv(&self, table: Table) -> String {
        let bool_text = |b: bool| if b { "true" } else { "false" }.to_owned();
        let opt = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let (header, rows): (&[&str], Vec<Vec<String>>) = match table {
            Table::Notes => (
                &[
                    "id",
                    "author",
                    "role",
                    "category",
                    "phase",
                    "minute",
                    "time",
                    "timeout",
                    "cluster",
                    "pinned",
                    "highlighted",
                    "hidden",
                    "reactions",
                    "picks",
                    "children",
                    "text",
                ],
                self.notes
                    .iter()
                    .map(|n| {
                        vec![
                            n.id.clone(),
                            n.author.clone(),
                            n.role.clone(),
                            n.category.clone(),
                            n.phase.clone(),
                            opt(n.minute),
                            n.time.clone(),
                            n.timeout.clone(),
                            n.cluster.clone(),
                            bool_text(n.pinned),
                            bool_text(n.highlighted),
                            bool_text(n.hidden),
                            n.reactions.to_string(),
                            n.picks.to_string(),
                            n.children.join("; "),
                            n.text.clone(),
                        ]
                    })
                    .collect(),
            ),
            Table::Timeouts => (
                &[
                    "id",
                    "phase",
                    "calledBy",
                    "role",
                    "startedAt",
                    "endedAt",
                    "seconds",
                    "notes",
                    "note",
                ],
                self.timeouts
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.phase.clone(),
                            t.called_by.clone(),
                            t.role.clone(),
                            t.started_at.clone(),
                            t.ended_at.clone(),
                            opt(t.seconds),
                            t.notes.to_string(),
                            t.note.clone(),
                        ]
                    })
                    .collect(),
            ),
            Table::Agreements => (
                &["id", "phase", "owner", "time", "text"],
                self.agreements
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.clone(),
                            a.phase.clone(),
                            a.owner.clone(),
                            a.time.clone(),
                            a.text.clone(),
                        ]
                    })
                    .collect(),
            ),
            Table::NextSteps => (
                &["id", "author", "role", "phase", "time", "text"],
                self.next_steps
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.clone(),
                            s.author.clone(),
                            s.role.clone(),
                            s.phase.clone(),
                            s.time.clone(),
                            s.text.clone(),
                        ]
                    })
                    .collect(),
            ),
        };
        let mut out = String::new();
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(rows.iter()) {
            let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// The manifest of the zip export, `photos.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhotoManifest {
    /// Every photo stored for the lab, by id.
    pub photos: Vec<PhotoEntry>,
    /// Photos that notes refer to but the lab does not have (never uploaded), by id.
    pub not_uploaded: Vec<MissingPhoto>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhotoEntry {
    /// The SHA-256 of the bytes uploaded.
    pub id: String,
    /// Its file in the zip: `photos/<id>.<jpg|png|webp>`.
    pub file: String,
    pub content_type: String,
    /// Its size as stored (metadata stripped).
    pub bytes: u64,
    /// The notes that show it.
    pub notes: Vec<PhotoUse>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingPhoto {
    pub id: String,
    pub notes: Vec<PhotoUse>,
}

/// A note that refers to a photo.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhotoUse {
    /// The note's id on the board (as in `board.automerge`).
    pub note: String,
    /// Whether the facilitator hid the photo on that note.
    pub hidden: bool,
    /// Whether the facilitator hid the note itself.
    pub note_hidden: bool,
}

/// The file extension of a photo's content type.
fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        _ => "bin",
    }
}

/// The zip export of a lab, its files stored uncompressed (see [`crate::zipfile`]):
/// - `board.automerge`: `saved`, the board exactly as `format=automerge` gives it;
/// - `research.json`: the de-identified research data, as `format=json` gives it;
/// - `photos/<id>.<jpg|png|webp>`: every photo stored for the lab, hidden ones included, as
///   `GET …/photos/<id>` serves it;
/// - `photos.json`: the [`PhotoManifest`].
///
/// It is built in memory: it takes about the board plus the lab's photos (at most
/// `--max-lab-photo-bytes`), allocated once; photos are read from `photos` one at a time. Run
/// it on a blocking thread.
pub fn archive(
    lab_id: &str,
    saved: &[u8],
    roles: &HashMap<String, Role>,
    photos: &PhotoReader,
    now_ms: i64,
) -> Result<Vec<u8>, ExportError> {
    let doc = crate::boardread::load(saved)?;
    let research = serde_json::to_vec_pretty(&Research::of(lab_id, &doc, roles))
        .expect("rows of strings, numbers and booleans serialize");
    let board = Board::read(&doc);
    drop(doc);
    let mut uses: BTreeMap<&str, Vec<PhotoUse>> = BTreeMap::new();
    for note in &board.notes {
        for photo in &note.photos {
            uses.entry(&photo.id).or_default().push(PhotoUse {
                note: note.id.clone(),
                hidden: photo.hidden,
                note_hidden: note.hidden,
            });
        }
    }
    let stored = photos.list(lab_id)?;
    let entries: Vec<PhotoEntry> = stored
        .into_iter()
        .map(|info| PhotoEntry {
            file: format!("photos/{}.{}", info.id, extension(&info.content_type)),
            notes: uses.remove(info.id.as_str()).unwrap_or_default(),
            id: info.id,
            content_type: info.content_type,
            bytes: info.size,
        })
        .collect();
    let manifest = PhotoManifest {
        photos: entries,
        not_uploaded: uses
            .into_iter()
            .map(|(id, notes)| MissingPhoto {
                id: id.to_owned(),
                notes,
            })
            .collect(),
    };
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).expect("strings, numbers and booleans serialize");

    let fixed = [
        ("board.automerge", saved),
        ("research.json", research.as_slice()),
        ("photos.json", manifest_json.as_slice()),
    ];
    let capacity = ZipWriter::size_of(fixed.iter().map(|(name, data)| (*name, data.len())).chain(
        manifest.photos.iter().map(|p| {
            (
                p.file.as_str(),
                usize::try_from(p.bytes).unwrap_or(usize::MAX),
            )
        }),
    ));
    if u32::try_from(capacity).is_err() {
        return Err(TooLarge.into());
    }
    let mut zip = ZipWriter::new(capacity, now_ms);
    for (name, data) in fixed {
        zip.add(name, data)?;
    }
    for entry in &manifest.photos {
        let photo = photos
            .get(lab_id, &entry.id)?
            .ok_or_else(|| ExportError::PhotoGone(entry.id.clone()))?;
        zip.add(&entry.file, &photo.bytes)?;
    }
    Ok(zip.finish()?)
}

/// One CSV field: a value a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`,
/// tab or CR) gets a leading `'`; a field with a comma, quote, CR or LF is quoted, its quotes
/// doubled.
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A file name stem from a lab's title: lowercase ASCII letters and digits, other runs turned
/// into one `-`; "lab" if nothing is left.
pub fn file_stem(title: &str) -> String {
    let mut stem = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            stem.push(c.to_ascii_lowercase());
        } else if !stem.is_empty() && !stem.ends_with('-') {
            stem.push('-');
        }
        if stem.len() >= MAX_FILE_STEM_CHARS {
            break;
        }
    }
    let stem = stem.trim_matches('-');
    if stem.is_empty() {
        "lab".to_owned()
    } else {
        stem.to_owned()
    }
}

/// `<prefix>-<hex>`: a hash of the lab and the board's id, the same in every export of the lab
/// and telling nothing about the id.
fn stable_id(prefix: &str, lab_id: &str, id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(prefix)
        .chain_update([0])
        .chain_update(lab_id)
        .chain_update([0])
        .chain_update(id)
        .finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{}", &hex[..ID_HEX_DIGITS])
}

/// Milliseconds since the epoch as ISO 8601 UTC, e.g. `2026-11-23T14:03:05.120Z`.
pub fn iso_time(ms: i64) -> String {
    let t = Civil::of(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli
    )
}

/// A moment as a calendar day and a time of day, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: i64,
    pub(crate) day: i64,
    pub(crate) hour: i64,
    pub(crate) minute: i64,
    pub(crate) second: i64,
    pub(crate) milli: i64,
}

impl Civil {
    /// The UTC day and time of `ms` milliseconds since the epoch.
    pub(crate) fn of(ms: i64) -> Self {
        let days = ms.div_euclid(86_400_000);
        let in_day = ms.rem_euclid(86_400_000);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: in_day / 3_600_000,
            minute: in_day / 60_000 % 60,
            second: in_day / 1000 % 60,
            milli: in_day % 1000,
        }
    }
}

/// Pseudonyms of people: "Observer N" in the order they are first met.
#[derive(Default)]
struct People {
    by_id: HashMap<String, String>,
    /// Display names seen with each pseudonym, to recognise an agreement's owner.
    by_name: HashMap<String, String>,
    /// Owners whose name belongs to nobody who wrote on the board.
    others: HashMap<String, String>,
}

impl People {
    fn author(&mut self, id: &str, name: &str) {
        let next = self.by_id.len() + 1;
        let pseudonym = self
            .by_id
            .entry(id.to_owned())
            .or_insert_with(|| format!("Observer {next}"))
            .clone();
        if !name.is_empty() {
            self.by_name.entry(name.to_owned()).or_insert(pseudonym);
        }
    }

    fn pseudonym(&self, id: &str) -> String {
        self.by_id.get(id).cloned().unwrap_or_default()
    }

    /// An agreement's owner (a name typed by the facilitator): the pseudonym of whoever
    /// wrote under that display name, else "Person N".
    fn owner(&mut self, name: &str) -> String {
        let name = name.trim();
        if name.is_empty() {
            return String::new();
        }
        if let Some(known) = self.by_name.get(name) {
            return known.clone();
        }
        let next = self.others.len() + 1;
        self.others
            .entry(name.to_owned())
            .or_insert_with(|| format!("Person {next}"))
            .clone()
    }
}

/// Pseudonyms of children: "Child A", "Child B", … "Child Z", "Child AA", … in the order they
/// were added to the lab (then as first tagged).
struct Children {
    by_alias: HashMap<String, String>,
    /// Aliases, longest first, for replacing them in texts.
    longest_first: Vec<String>,
}

impl Children {
    fn of(board: &Board) -> Self {
        let mut listed: Vec<(i64, &String)> = board
            .children
            .iter()
            .map(|(alias, added_at)| (*added_at, alias))
            .collect();
        listed.sort();
        let mut order: Vec<&String> = listed.into_iter().map(|(_, alias)| alias).collect();
        let mut notes: Vec<&Note> = board.notes.iter().collect();
        notes.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for note in notes {
            order.extend(note.children.iter());
        }
        let mut by_alias = HashMap::new();
        for alias in order {
            if alias.is_empty() || by_alias.contains_key(alias) {
                continue;
            }
            let name = format!("Child {}", letters(by_alias.len()));
            by_alias.insert(alias.clone(), name);
        }
        let mut longest_first: Vec<String> = by_alias.keys().cloned().collect();
        longest_first.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        Self {
            by_alias,
            longest_first,
        }
    }

    fn pseudonym(&self, alias: &str) -> String {
        self.by_alias.get(alias).cloned().unwrap_or_default()
    }

    /// `text` with every alias written as a whole word (case as written) replaced by its
    /// pseudonym, longest alias first; what is put in is not searched again.
    fn scrub(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut before: Option<char> = None;
        'scan: while let Some(c) = rest.chars().next() {
            if !before.is_some_and(is_word_char) {
                for alias in &self.longest_first {
                    if let Some(after) = rest.strip_prefix(alias.as_str()) {
                        let ends_word = !after.chars().next().is_some_and(is_word_char)
                            || !alias.chars().last().is_some_and(is_word_char);
                        if ends_word {
                            out.push_str(&self.by_alias[alias]);
                            before = alias.chars().last();
                            rest = after;
                            continue 'scan;
                        }
                    }
                }
            }
            out.push(c);
            before = Some(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `A`, `B`, … `Z`, `AA`, `AB`, …: bijective base 26.
fn letters(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        let letter = b'A' + u8::try_from(index % 26).expect("a remainder of 26 fits in a byte");
        out.push(char::from(letter));
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ActorId;
    use automerge::{ObjType, ReadDoc, ROOT};
    use labboard_protocol::board::{new_board, LabInfo};

    fn children(aliases: &[&str]) -> Children {
        let mut by_alias = HashMap::new();
        for (i, alias) in aliases.iter().enumerate() {
            by_alias.insert((*alias).to_owned(), format!("Child {}", letters(i)));
        }
        let mut longest_first: Vec<String> = by_alias.keys().cloned().collect();
        longest_first.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        Children {
            by_alias,
            longest_first,
        }
    }

    #[test]
    fn aliases_are_replaced_as_whole_words_longest_first() {
        let c = children(&["Jo", "Jo B.", "M.L."]);
        assert_eq!(
            c.scrub("Jo and Jo B. and Joanna, M.L. said; (Jo)"),
            "Child A and Child B and Joanna, Child C said; (Child A)"
        );
        // Case as written only; no replacement inside a word or of what was put in.
        assert_eq!(c.scrub("jo JoJo xJo Jo_1"), "jo JoJo xJo Jo_1");
        let c = children(&["Child", "A"]);
        assert_eq!(c.scrub("Child said A"), "Child A said Child B");
    }

    #[test]
    fn letters_count_like_spreadsheet_columns() {
        assert_eq!(letters(0), "A");
        assert_eq!(letters(25), "Z");
        assert_eq!(letters(26), "AA");
        assert_eq!(letters(27), "AB");
        assert_eq!(letters(701), "ZZ");
        assert_eq!(letters(702), "AAA");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\r\nlines"), "\"two\r\nlines\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_field("@cmd"), "'@cmd");
    }

    #[test]
    fn iso_times_are_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_795_473_181_087), "2026-11-23T22:33:01.087Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn photo_files_are_named_by_their_type() {
        assert_eq!(extension("image/jpeg"), "jpg");
        assert_eq!(extension("image/png"), "png");
        assert_eq!(extension("image/webp"), "webp");
        assert_eq!(extension("text/plain"), "bin");
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("Making ten: Grade 2!"), "making-ten-grade-2");
        assert_eq!(file_stem("../../etc/passwd"), "etc-passwd");
        assert_eq!(file_stem("\"évé\""), "v");
        assert_eq!(file_stem("日本"), "lab");
    }

    #[test]
    fn formats_and_tables_are_named() {
        for (name, format) in [
            ("json", Format::Json),
            ("csv", Format::Csv),
            ("automerge", Format::Automerge),
            ("html", Format::Html),
            ("zip", Format::Zip),
        ] {
            assert_eq!(Format::parse(name).unwrap(), format);
        }
        let err = Format::parse("pdf").unwrap_err().to_string();
        assert!(err.contains("`pdf`") && err.contains("zip"), "{err}");
        assert!(Format::parse("ZIP").is_err());
        assert_eq!(Table::parse("nextSteps").unwrap(), Table::NextSteps);
        assert!(Table::parse("children").is_err());
    }

    #[test]
    fn a_board_reads_into_pseudonymous_rows() {
        let mut doc = new_board(&LabInfo::default(), ActorId::random());
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let kids = tx.get(ROOT, "children")?.unwrap().1;
            let kid = tx.put_object(&kids, "Zed", ObjType::Map)?;
            tx.put(&kid, "addedBy", "Qwertyna")?;
            tx.put(&kid, "addedAt", 5_i64)?;
            let notes = tx.get(ROOT, "notes")?.unwrap().1;
            for (id, author, name, at) in [("n2", "b", "Bea", 20), ("n1", "a", "Qwertyna", 10)] {
                let note = tx.put_object(&notes, id, ObjType::Map)?;
                tx.put(&note, "text", "Zed counted")?;
                tx.put(&note, "authorId", author)?;
                tx.put(&note, "authorName", name)?;
                tx.put(&note, "createdAt", at as i64)?;
                tx.put(&note, "category", "strategies")?;
                tx.put(&note, "phase", "lesson-1")?;
                let list = tx.put_object(&note, "children", ObjType::List)?;
                tx.insert(&list, 0, "Zed")?;
                tx.put_object(&note, "reactions", ObjType::Map)?;
            }
            let picks = tx.get(ROOT, "picks")?.unwrap().1;
            tx.put(&picks, "a:n2", 1_i64)?;
            tx.put(&picks, "b:n2", 2_i64)?;
            Ok(())
        })
        .unwrap();
        let roles = HashMap::from([("a".to_owned(), Role::Facilitator)]);
        let research = Research::of("lab1", &doc, &roles);
        let first = &research.notes[0];
        assert_eq!(first.author, "Observer 1");
        assert_eq!(first.role, "facilitator");
        assert_eq!(research.notes[1].role, "unknown");
        assert_eq!(first.text, "Child A counted");
        assert_eq!(first.children, vec!["Child A"]);
        assert_eq!(first.category, "Strategies");
        assert_eq!(first.phase, "Lesson 1");
        assert_eq!(research.notes[1].picks, 2);
        assert_eq!(first.id, stable_id("N", "lab1", "n1"));
        assert_ne!(first.id, stable_id("N", "lab2", "n1"));
        let csv = research.csv(Table::Notes);
        assert!(!csv.contains("Qwertyna") && !csv.contains("Zed"), "{csv}");
    }

    #[test]
    fn notes_are_counted_leniently_hidden_ones_too() {
        let mut doc = new_board(&LabInfo::default(), ActorId::random());
        assert_eq!(NoteCounts::of(&doc), NoteCounts::default());
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let notes = tx.get(ROOT, "notes")?.unwrap().1;
            for (id, hidden) in [("n1", None), ("n2", Some(true)), ("n3", Some(false))] {
                let note = tx.put_object(&notes, id, ObjType::Map)?;
                tx.put(&note, "text", "counted")?;
                if let Some(hidden) = hidden {
                    tx.put(&note, "hidden", hidden)?;
                }
            }
            // Not a note: a string where a map belongs, and a map whose `hidden` is no bool.
            tx.put(&notes, "junk", "not a map")?;
            let odd = tx.put_object(&notes, "n4", ObjType::Map)?;
            tx.put(&odd, "hidden", "yes")?;
            Ok(())
        })
        .unwrap();
        let counts = NoteCounts::of(&crate::boardread::load(&doc.save()).unwrap());
        assert_eq!(
            counts,
            NoteCounts {
                notes: 4,
                hidden: 1
            }
        );
        assert!(crate::boardread::load(b"not a board").is_err());
    }
}
