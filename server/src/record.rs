//! The lab's record: one self-contained HTML page, built for print (Letter and A4), that a
//! district keeps and a facilitator hands out after the lab.
//!
//! It holds the lab's details, the phases with their times, Lesson 1 beside Lesson 2 (each
//! category's notes in each lesson, and what the group agreed between them), every teacher
//! time-out with the notes written during it, the agreements, each coach's next steps, the picked
//! notes, the clusters and every note by phase and category. Hidden notes are left out and
//! counted. The page has no script, loads nothing and shows no controls; every text of the board
//! is escaped. Times are shown in the reader's time zone when the caller gives its offset.
//!
//! The photos of the visible notes are embedded in the page as `data:` URIs (its CSP allows
//! images from `data:` and nothing else), each once, under its note in the notes by phase and
//! category; hidden photos and the photos of hidden notes are left out and counted. A lab may
//! hold up to `--max-lab-photo-bytes` of photos (500 MiB by default), and a record of a lab
//! with that much on its visible notes is that large, a third more for base64: it is built in
//! memory once. The photos are read one at a time and each is kept only as its `data:` URI
//! until it is written into the page, so building it takes about the size of the page.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use automerge::Automerge;
use base64::Engine as _;

use crate::boardread::{Board, Item, Note, NotePhoto, Timeout};
use crate::export::{Civil, ExportError};
use crate::photos::Photo;
use crate::storage::StorageError;

/// Largest UTC offset a caller may give, in minutes (UTC+14:00 is the furthest on Earth).
pub const MAX_UTC_OFFSET_MINUTES: i32 = 14 * 60;

/// What the record says about the lab besides its board.
#[derive(Debug, Clone, Default)]
pub struct RecordLab {
    /// The lab's title, school, grade and date as created; the board's own values win when set.
    pub title: String,
    pub school: String,
    pub grade: String,
    pub date: String,
    /// When the lab was ended (milliseconds since the epoch), if it was.
    pub ended_at: Option<i64>,
}

/// How the record writes times.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Minutes east of UTC of the reader's time zone.
    pub utc_offset_minutes: i32,
    /// When the record is made (milliseconds since the epoch).
    pub now_ms: i64,
}

/// Where the record reads a photo by its id: the lab's photos (see
/// [`crate::photos::PhotoReader`]); `None` for a photo the lab does not have.
pub type PhotoSource<'a> = &'a dyn Fn(&str) -> Result<Option<Photo>, StorageError>;

/// The record of the board saved in `bytes`, its photos read from `photos`.
pub fn render_saved(
    lab: &RecordLab,
    bytes: &[u8],
    clock: Clock,
    photos: PhotoSource<'_>,
) -> Result<String, ExportError> {
    render(lab, &crate::boardread::load(bytes)?, clock, photos)
}

/// The record of a board, as one HTML document, its photos read from `photos`.
pub fn render(
    lab: &RecordLab,
    doc: &Automerge,
    clock: Clock,
    photos: PhotoSource<'_>,
) -> Result<String, ExportError> {
    let board = Board::read(doc);
    let embedded = Embedded::read(&board, photos)?;
    Ok(Record::new(lab, &board, clock, embedded).html())
}

/// A note's photos that the record shows: the ones the facilitator did not hide.
fn shown_photos(note: &Note) -> impl Iterator<Item = &NotePhoto> {
    note.photos.iter().filter(|p| !p.hidden)
}

/// The photos the record embeds, as `data:` URIs, each until it is written into the page.
struct Embedded {
    /// Photo id -> how many notes still have to show it, and its `data:` URI (`None`: the
    /// lab does not have it).
    photos: HashMap<String, (usize, Option<String>)>,
    /// The bytes of every `data:` URI.
    bytes: usize,
}

impl Embedded {
    /// Reads the shown photos of the visible notes, one at a time.
    fn read(board: &Board, source: PhotoSource<'_>) -> Result<Self, StorageError> {
        let mut photos: HashMap<String, (usize, Option<String>)> = HashMap::new();
        let mut bytes = 0;
        for note in board.notes.iter().filter(|n| !n.hidden) {
            for photo in shown_photos(note) {
                if let Some((uses, _)) = photos.get_mut(&photo.id) {
                    *uses += 1;
                    continue;
                }
                let uri = source(&photo.id)?.map(|photo| data_uri(&photo));
                bytes += uri.as_ref().map_or(0, String::len);
                photos.insert(photo.id.clone(), (1, uri));
            }
        }
        Ok(Self { photos, bytes })
    }
}

/// `data:<type>;base64,<bytes>`.
fn data_uri(photo: &Photo) -> String {
    let prefix = format!("data:{};base64,", esc(&photo.content_type));
    let mut uri = String::with_capacity(prefix.len() + photo.bytes.len().div_ceil(3) * 4);
    uri.push_str(&prefix);
    base64::engine::general_purpose::STANDARD.encode_string(&photo.bytes, &mut uri);
    uri
}

/// Escapes text for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `December 4, 2026` of a `YYYY-MM-DD` day; any other text as it is.
fn day_of_date(date: &str) -> String {
    let parts: Vec<&str> = date.split('-').collect();
    if let [y, m, d] = parts.as_slice() {
        if let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<usize>(), d.parse::<i64>()) {
            if (1..=12).contains(&m) && (1..=31).contains(&d) && y.to_string().len() == 4 {
                return format!("{} {d}, {y}", MONTHS[m - 1]);
            }
        }
    }
    date.to_owned()
}

/// Whole minutes and seconds of a span: `45 s`, `2 min 30 s`, `1 h 05 min`.
fn span(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 && s > 0 && m < 10 {
        format!("{m} min {s} s")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

struct Record<'a> {
    lab: &'a RecordLab,
    board: &'a Board,
    clock: Clock,
    /// Visible notes by id.
    shown: HashMap<&'a str, &'a Note>,
    /// Time-outs in the order they were called, numbered from 1 in that order.
    timeouts: Vec<&'a Timeout>,
    picks: HashMap<&'a str, usize>,
    /// The photos still to be written into the page.
    embedded: RefCell<Embedded>,
}

impl<'a> Record<'a> {
    fn new(lab: &'a RecordLab, board: &'a Board, clock: Clock, embedded: Embedded) -> Self {
        let mut timeouts: Vec<&Timeout> = board.timeouts.iter().collect();
        timeouts.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Self {
            lab,
            board,
            clock,
            shown: board
                .notes
                .iter()
                .filter(|n| !n.hidden)
                .map(|n| (n.id.as_str(), n))
                .collect(),
            timeouts,
            picks: board.pick_counts(),
            embedded: RefCell::new(embedded),
        }
    }

    fn local(&self, ms: i64) -> Civil {
        Civil::of(ms.saturating_add(i64::from(self.clock.utc_offset_minutes) * 60_000))
    }

    /// `9:42 AM` in the reader's zone.
    fn time(&self, ms: i64) -> String {
        let t = self.local(ms);
        let hour = match t.hour % 12 {
            0 => 12,
            h => h,
        };
        let half = if t.hour < 12 { "AM" } else { "PM" };
        format!("{hour}:{:02}\u{a0}{half}", t.minute)
    }

    /// `December 4, 2026` in the reader's zone.
    fn day(&self, ms: i64) -> String {
        let t = self.local(ms);
        let month = usize::try_from(t.month - 1).unwrap_or(0).min(11);
        format!("{} {}, {}", MONTHS[month], t.day, t.year)
    }

    /// `UTC`, `UTC−05:00`, `UTC+05:30`.
    fn zone(&self) -> String {
        let offset = self.clock.utc_offset_minutes;
        if offset == 0 {
            return "UTC".to_owned();
        }
        let sign = if offset < 0 { '\u{2212}' } else { '+' };
        let abs = offset.unsigned_abs();
        format!("UTC{sign}{:02}:{:02}", abs / 60, abs % 60)
    }

    fn title(&self) -> &str {
        first_set(&self.board.lab.title, &self.lab.title, "Math lab")
    }

    fn phase_label(&self, id: &str) -> String {
        match self.board.phases.get(id) {
            Some(label) if !label.is_empty() => label.clone(),
            _ if id.is_empty() => "No phase".to_owned(),
            _ => id.to_owned(),
        }
    }

    fn phase(&self, id: &str) -> Option<&'a Item> {
        self.board.phase_list.iter().find(|p| p.id == id)
    }

    /// Whole minutes into its phase when the note was written.
    fn minute_of(&self, note: &Note) -> Option<i64> {
        note.minute.or_else(|| {
            let start = self.phase(&note.phase)?.started_at?;
            Some((note.created_at - start).max(0) / 60_000)
        })
    }

    fn timeout_number(&self, id: &str) -> Option<usize> {
        self.timeouts.iter().position(|t| t.id == id).map(|i| i + 1)
    }

    /// When a time-out ended, or the end of its phase (or of the lab) if it was never ended.
    fn timeout_end(&self, t: &Timeout) -> Option<i64> {
        t.ended_at
            .or_else(|| self.phase(&t.phase).and_then(|p| p.ended_at))
            .or(self.lab.ended_at)
    }

    /// The notes written during a time-out: linked to it, or written in its phase during its
    /// time without a link. Hidden ones are left out.
    fn timeout_notes(&self, t: &Timeout) -> Vec<&'a Note> {
        let end = self.timeout_end(t).unwrap_or(i64::MAX);
        let mut notes: Vec<&Note> = self
            .shown
            .values()
            .copied()
            .filter(|n| {
                n.timeout_id == t.id
                    || (n.timeout_id.is_empty()
                        && n.phase == t.phase
                        && n.created_at >= t.started_at
                        && n.created_at <= end)
            })
            .collect();
        sort_notes(&mut notes);
        notes
    }

    fn notes_of_phase(&self, phase: &str) -> Vec<&'a Note> {
        let mut notes: Vec<&Note> = self
            .shown
            .values()
            .copied()
            .filter(|n| n.phase == phase)
            .collect();
        sort_notes(&mut notes);
        notes
    }

    fn hidden_in_phase(&self, phase: &str) -> usize {
        self.board
            .notes
            .iter()
            .filter(|n| n.hidden && n.phase == phase)
            .count()
    }

    /// Categories in display order, and "Other" for notes whose category the board lacks.
    fn category_groups(&self, notes: &[&'a Note]) -> Vec<(String, Vec<&'a Note>)> {
        let known: HashSet<&str> = self
            .board
            .category_list
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        let mut groups: Vec<(String, Vec<&Note>)> = self
            .board
            .category_list
            .iter()
            .map(|c| {
                let label = if c.label.is_empty() {
                    c.id.clone()
                } else {
                    c.label.clone()
                };
                let notes = notes
                    .iter()
                    .copied()
                    .filter(|n| n.category == c.id)
                    .collect();
                (label, notes)
            })
            .collect();
        let other: Vec<&Note> = notes
            .iter()
            .copied()
            .filter(|n| !known.contains(n.category.as_str()))
            .collect();
        if !other.is_empty() {
            groups.push(("Other".to_owned(), other));
        }
        groups
    }

    fn html(&self) -> String {
        // Room for the photos from the start: the page is never copied to grow.
        let mut out = String::with_capacity(64 * 1024 + self.embedded.borrow().bytes);
        let title = esc(self.title());
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
             <meta name=\"generator\" content=\"Labboard\">\n\
             <title>{title} \u{2014} lab record</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
             <main class=\"record\">\n"
        );
        self.cover(&mut out);
        self.phases(&mut out);
        self.lessons(&mut out);
        self.agreements(&mut out);
        self.next_steps(&mut out);
        self.timeouts_section(&mut out);
        self.picks_section(&mut out);
        self.clusters(&mut out);
        self.notes_section(&mut out);
        let _ = write!(
            out,
            "<footer class=\"made\">Made by Labboard from the lab\u{2019}s board on {} at {} ({}). \
             Hidden notes and photos are left out of this record and counted.</footer>\n</main>\n</body>\n</html>\n",
            self.day(self.clock.now_ms),
            self.time(self.clock.now_ms),
            self.zone()
        );
        out
    }

    fn cover(&self, out: &mut String) {
        let details = &self.board.lab;
        let school = first_set(&details.school, &self.lab.school, "");
        let grade = first_set(&details.grade, &self.lab.grade, "");
        let date = first_set(&details.date, &self.lab.date, "");
        let mut meta = Vec::new();
        if !school.is_empty() {
            meta.push(esc(school));
        }
        if !grade.is_empty() {
            let grade = if grade.chars().all(|c| c.is_ascii_digit()) {
                format!("Grade {grade}")
            } else {
                grade.to_owned()
            };
            meta.push(esc(&grade));
        }
        if !date.is_empty() {
            meta.push(esc(&day_of_date(date)));
        }
        let _ = write!(
            out,
            "<header class=\"cover\">\n<p class=\"kicker\">Math lab record</p>\n<h1>{}</h1>\n",
            esc(self.title())
        );
        if !meta.is_empty() {
            let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" \u{b7} "));
        }
        let state = match self.lab.ended_at {
            Some(at) => format!("Ended {} at {}", self.day(at), self.time(at)),
            None => "In progress: this record shows the board as it is now".to_owned(),
        };
        let _ = writeln!(
            out,
            "<p class=\"state\">{} \u{b7} Times are {}</p>",
            esc(&state),
            self.zone()
        );
        let fields = [
            ("Problem of practice", &details.problem_of_practice),
            ("Mathematical goal", &details.mathematical_goal),
            ("Lesson task", &details.lesson_task),
        ];
        if fields.iter().any(|(_, v)| !v.trim().is_empty()) {
            out.push_str("<dl class=\"details\">\n");
            for (name, value) in fields {
                if !value.trim().is_empty() {
                    let _ = writeln!(out, "<dt>{name}</dt><dd>{}</dd>", esc(value.trim()));
                }
            }
            out.push_str("</dl>\n");
        }
        let hidden = self.board.notes.len() - self.shown.len();
        let mut people: HashSet<&str> = HashSet::new();
        people.extend(self.board.notes.iter().map(|n| n.author_id.as_str()));
        people.extend(self.board.timeouts.iter().map(|t| t.called_by_id.as_str()));
        people.extend(self.board.next_steps.iter().map(|s| s.author_id.as_str()));
        people.remove("");
        let mut totals = vec![plural(self.shown.len(), "note", "notes")];
        if hidden > 0 {
            totals.push(format!("{hidden} hidden, left out"));
        }
        let photos: usize = self.shown.values().map(|n| shown_photos(n).count()).sum();
        let hidden_photos: usize = self
            .board
            .notes
            .iter()
            .map(|n| {
                if n.hidden {
                    n.photos.len()
                } else {
                    n.photos.iter().filter(|p| p.hidden).count()
                }
            })
            .sum();
        if photos > 0 {
            totals.push(plural(photos, "photo", "photos"));
        }
        if hidden_photos > 0 {
            totals.push(format!(
                "{}, left out",
                plural(hidden_photos, "hidden photo", "hidden photos")
            ));
        }
        totals.push(plural(self.timeouts.len(), "time-out", "time-outs"));
        totals.push(plural(
            self.board.agreements.len(),
            "agreement",
            "agreements",
        ));
        totals.push(plural(
            self.board.next_steps.len(),
            "next step",
            "next steps",
        ));
        totals.push(plural(people.len(), "person wrote", "people wrote"));
        out.push_str("<ul class=\"totals\">");
        for total in totals {
            let _ = write!(out, "<li>{}</li>", esc(&total));
        }
        out.push_str("</ul>\n</header>\n");
    }

    fn phases(&self, out: &mut String) {
        out.push_str(
            "<section id=\"phases\">\n<h2>Phases</h2>\n<div class=\"table-wrap\">\n<table class=\"phases\">\n<thead><tr>\
             <th scope=\"col\">Phase</th><th scope=\"col\">Started</th><th scope=\"col\">Ended</th>\
             <th scope=\"col\">Length</th><th scope=\"col\">Notes</th><th scope=\"col\">Time-outs</th>\
             </tr></thead>\n<tbody>\n",
        );
        for phase in &self.board.phase_list {
            let started = phase
                .started_at
                .map_or_else(|| "Not started".to_owned(), |at| self.time(at));
            // A phase still current when the lab ended, ended with it.
            let ended = match (phase.started_at, phase.ended_at, self.lab.ended_at) {
                (_, Some(at), _) | (Some(_), None, Some(at)) => self.time(at),
                (Some(_), None, None) => "Running".to_owned(),
                (None, None, _) => "\u{2014}".to_owned(),
            };
            let length = match (phase.started_at, phase.ended_at.or(self.lab.ended_at)) {
                (Some(start), Some(end)) if end >= start => span(end - start),
                _ => "\u{2014}".to_owned(),
            };
            let notes = self.notes_of_phase(&phase.id).len();
            let timeouts = self.timeouts.iter().filter(|t| t.phase == phase.id).count();
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{notes}</td><td>{timeouts}</td></tr>",
                esc(&self.phase_label(&phase.id)),
                esc(&started),
                esc(&ended),
                esc(&length)
            );
        }
        out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    }

    /// The two lessons to compare: the last lesson that started and the lesson before it; until
    /// a second lesson has started, the first two lessons (as the board's comparison does).
    fn lesson_pair(&self) -> (Option<&'a Item>, Option<&'a Item>) {
        let lessons: Vec<&Item> = self
            .board
            .phase_list
            .iter()
            .filter(|p| p.id.starts_with("lesson"))
            .collect();
        let last = lessons.iter().rposition(|p| p.started_at.is_some());
        match last {
            Some(i) if i >= 1 => (Some(lessons[i - 1]), Some(lessons[i])),
            _ => (lessons.first().copied(), lessons.get(1).copied()),
        }
    }

    fn lessons(&self, out: &mut String) {
        let (first, second) = self.lesson_pair();
        let Some(first) = first else {
            return;
        };
        let first_label = self.phase_label(&first.id);
        let second_label =
            second.map_or_else(|| "Second lesson".to_owned(), |p| self.phase_label(&p.id));
        let first_notes = self.notes_of_phase(&first.id);
        let second_notes = second.map_or_else(Vec::new, |p| self.notes_of_phase(&p.id));
        let _ = write!(
            out,
            "<section id=\"lessons\">\n<h2>{} beside {}</h2>\n<table class=\"compare\">\n<thead><tr>\
             <th scope=\"col\">Category</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
            esc(&first_label),
            esc(&second_label),
            esc(&first_label),
            esc(&second_label)
        );
        let side_facts = |lesson: Option<&Item>, notes: usize| -> String {
            let Some(lesson) = lesson else {
                return "Not planned".to_owned();
            };
            let Some(start) = lesson.started_at else {
                return "Not taught yet".to_owned();
            };
            let timeouts = self
                .timeouts
                .iter()
                .filter(|t| t.phase == lesson.id)
                .count();
            let mut facts = vec![
                plural(notes, "note", "notes"),
                plural(timeouts, "time-out", "time-outs"),
            ];
            if let Some(end) = lesson.ended_at.or(self.lab.ended_at) {
                facts.push(span(end - start));
            }
            facts.join(" \u{b7} ")
        };
        let _ = writeln!(
            out,
            "<tr class=\"facts\"><th scope=\"row\">In all</th><td>{}</td><td>{}</td></tr>",
            esc(&side_facts(Some(first), first_notes.len())),
            esc(&side_facts(second, second_notes.len()))
        );
        let first_groups = self.category_groups(&first_notes);
        let second_groups = self.category_groups(&second_notes);
        let mut labels: Vec<String> = first_groups.iter().map(|(l, _)| l.clone()).collect();
        for (label, _) in &second_groups {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
        let group = |groups: &[(String, Vec<&'a Note>)], label: &str| -> Vec<&'a Note> {
            groups
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        for label in labels {
            let a = group(&first_groups, &label);
            let b = group(&second_groups, &label);
            if a.is_empty() && b.is_empty() {
                continue;
            }
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}<span class=\"count\">{} \u{b7} {}</span></th><td>",
                esc(&label),
                a.len(),
                b.len()
            );
            self.compact_notes(out, &a);
            out.push_str("</td><td>");
            self.compact_notes(out, &b);
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        // What the group agreed between the lessons: the agreements of the phases between them.
        if let Some(second) = second {
            let between: Vec<&str> = self
                .board
                .phase_list
                .iter()
                .filter(|p| p.order > first.order && p.order < second.order)
                .map(|p| p.id.as_str())
                .collect();
            let agreed: Vec<_> = self
                .agreements_in_order()
                .into_iter()
                .filter(|a| between.contains(&a.phase.as_str()))
                .collect();
            if !agreed.is_empty() {
                let _ = writeln!(
                    out,
                    "<h3>Agreed before {}</h3>\n<ol class=\"agreed\">",
                    esc(&second_label)
                );
                for a in agreed {
                    let _ = writeln!(out, "<li>{}</li>", esc(a.text.trim()));
                }
                out.push_str("</ol>\n");
            }
        }
        out.push_str("</section>\n");
    }

    /// Notes in a comparison cell: the text and who wrote it.
    fn compact_notes(&self, out: &mut String, notes: &[&Note]) {
        if notes.is_empty() {
            out.push_str("<p class=\"none\">\u{2014}</p>");
            return;
        }
        out.push_str("<ul class=\"compact\">");
        for note in notes {
            let _ = write!(
                out,
                "<li><span class=\"text\">{}</span> <span class=\"by\">{}</span></li>",
                esc(note.text.trim()),
                esc(&self.byline(note, false))
            );
        }
        out.push_str("</ul>");
    }

    fn agreements_in_order(&self) -> Vec<&'a crate::boardread::Agreement> {
        let mut agreements: Vec<_> = self.board.agreements.iter().collect();
        agreements.sort_by(|a, b| {
            a.order
                .total_cmp(&b.order)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        agreements
    }

    fn agreements(&self, out: &mut String) {
        out.push_str("<section id=\"agreements\">\n<h2>Agreements</h2>\n");
        let agreements = self.agreements_in_order();
        if agreements.is_empty() {
            out.push_str("<p class=\"none\">The group recorded no agreements.</p>\n</section>\n");
            return;
        }
        out.push_str("<ol class=\"agreements\">\n");
        for a in agreements {
            let mut about = Vec::new();
            if !a.owner.trim().is_empty() {
                about.push(format!("Owner: {}", a.owner.trim()));
            }
            if !a.phase.is_empty() {
                about.push(self.phase_label(&a.phase));
            }
            let _ = writeln!(
                out,
                "<li><span class=\"text\">{}</span> <span class=\"by\">{}</span></li>",
                esc(a.text.trim()),
                esc(&about.join(" \u{b7} "))
            );
        }
        out.push_str("</ol>\n</section>\n");
    }

    fn next_steps(&self, out: &mut String) {
        out.push_str("<section id=\"next-steps\">\n<h2>Next steps</h2>\n");
        let mut steps: Vec<_> = self.board.next_steps.iter().collect();
        if steps.is_empty() {
            out.push_str("<p class=\"none\">No coach wrote a next step.</p>\n</section>\n");
            return;
        }
        steps.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        // Coaches in the order they wrote their first step.
        let mut coaches: Vec<(&str, &str)> = Vec::new();
        for s in &steps {
            if !coaches.iter().any(|(id, _)| *id == s.author_id) {
                coaches.push((&s.author_id, &s.author_name));
            }
        }
        out.push_str("<div class=\"coaches\">\n");
        for (id, name) in coaches {
            let name = if name.trim().is_empty() {
                "Someone"
            } else {
                name.trim()
            };
            let _ = writeln!(out, "<div class=\"coach\">\n<h3>{}</h3>\n<ul>", esc(name));
            for s in steps.iter().filter(|s| s.author_id == id) {
                let _ = writeln!(out, "<li>{}</li>", esc(s.text.trim()));
            }
            out.push_str("</ul>\n</div>\n");
        }
        out.push_str("</div>\n</section>\n");
    }

    fn timeouts_section(&self, out: &mut String) {
        out.push_str("<section id=\"timeouts\">\n<h2>Teacher time-outs</h2>\n");
        if self.timeouts.is_empty() {
            out.push_str("<p class=\"none\">Nobody called a time-out.</p>\n</section>\n");
            return;
        }
        for (i, t) in self.timeouts.iter().enumerate() {
            let mut when = self.phase_label(&t.phase);
            if let Some(start) = self.phase(&t.phase).and_then(|p| p.started_at) {
                let _ = write!(when, ", minute {}", (t.started_at - start).max(0) / 60_000);
            }
            let by = if t.called_by.trim().is_empty() {
                "someone"
            } else {
                t.called_by.trim()
            };
            let length = match t.ended_at {
                Some(end) => span(end - t.started_at),
                None => "never ended".to_owned(),
            };
            let _ = write!(
                out,
                "<article class=\"timeout\">\n<h3>Time-out {} <span class=\"when\">{}</span></h3>\n\
                 <p class=\"by\">Called by {} at {} \u{b7} {}</p>\n",
                i + 1,
                esc(&when),
                esc(by),
                self.time(t.started_at),
                esc(&length)
            );
            if !t.note.trim().is_empty() {
                let _ = writeln!(out, "<p class=\"tnote\">{}</p>", esc(t.note.trim()));
            }
            let notes = self.timeout_notes(t);
            if notes.is_empty() {
                out.push_str("<p class=\"none\">No notes were written during it.</p>\n");
            } else {
                let _ = writeln!(
                    out,
                    "<p class=\"sub\">{} written during it</p>",
                    plural(notes.len(), "note", "notes")
                );
                self.note_list(out, &notes, false, false);
            }
            out.push_str("</article>\n");
        }
        out.push_str("</section>\n");
    }

    fn picks_section(&self, out: &mut String) {
        let limit = self.board.pick_limit;
        let _ = writeln!(
            out,
            "<section id=\"picks\">\n<h2>Picks</h2>\n<p class=\"sub\">The notes people picked for the debrief; each person has {}.</p>",
            plural(limit, "pick", "picks")
        );
        let mut picked: Vec<(&Note, usize)> = self
            .shown
            .values()
            .filter_map(|n| {
                let count = self.picks.get(n.id.as_str()).copied().unwrap_or(0);
                (count > 0).then_some((*n, count))
            })
            .collect();
        if picked.is_empty() {
            out.push_str("<p class=\"none\">Nobody picked a note.</p>\n</section>\n");
            return;
        }
        picked.sort_by(|(a, x), (b, y)| {
            y.cmp(x)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        out.push_str("<ol class=\"notes picked\">\n");
        for (note, count) in picked {
            let _ = writeln!(
                out,
                "<li class=\"note\"><span class=\"badge\">{}</span> <span class=\"text\">{}</span> <span class=\"by\">{}</span></li>",
                esc(&plural(count, "pick", "picks")),
                esc(note.text.trim()),
                esc(&self.byline_with(note, true, false))
            );
        }
        out.push_str("</ol>\n</section>\n");
    }

    fn clusters(&self, out: &mut String) {
        if self.board.cluster_list.is_empty() {
            return;
        }
        out.push_str("<section id=\"clusters\">\n<h2>Clusters</h2>\n");
        for cluster in &self.board.cluster_list {
            let mut notes: Vec<&Note> = self
                .shown
                .values()
                .copied()
                .filter(|n| n.cluster_id == cluster.id)
                .collect();
            sort_notes(&mut notes);
            let label = if cluster.label.trim().is_empty() {
                "Unnamed cluster"
            } else {
                cluster.label.trim()
            };
            let _ = writeln!(
                out,
                "<div class=\"cluster\">\n<h3>{} <span class=\"count\">{}</span></h3>",
                esc(label),
                plural(notes.len(), "note", "notes")
            );
            if notes.is_empty() {
                out.push_str("<p class=\"none\">No notes shown in it.</p>\n");
            } else {
                self.note_list(out, &notes, true, false);
            }
            out.push_str("</div>\n");
        }
        out.push_str("</section>\n");
    }

    fn notes_section(&self, out: &mut String) {
        out.push_str("<section id=\"notes\">\n<h2>Notes by phase and category</h2>\n");
        let mut phase_ids: Vec<&str> = self
            .board
            .phase_list
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        // Notes of a phase the board no longer has come last, under their phase id.
        let mut unknown: Vec<&str> = self
            .board
            .notes
            .iter()
            .map(|n| n.phase.as_str())
            .filter(|p| !self.board.phases.contains_key(*p))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        phase_ids.extend(unknown);
        let mut any = false;
        for phase in phase_ids {
            let notes = self.notes_of_phase(phase);
            let hidden = self.hidden_in_phase(phase);
            if notes.is_empty() && hidden == 0 {
                continue;
            }
            any = true;
            let mut count = plural(notes.len(), "note", "notes");
            if hidden > 0 {
                let _ = write!(count, " \u{b7} {hidden} hidden, left out");
            }
            let _ = writeln!(
                out,
                "<section class=\"phase\">\n<h3>{} <span class=\"count\">{}</span></h3>",
                esc(&self.phase_label(phase)),
                esc(&count)
            );
            for (label, group) in self.category_groups(&notes) {
                if group.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "<div class=\"category\">\n<h4>{} <span class=\"count\">{}</span></h4>",
                    esc(&label),
                    group.len()
                );
                self.note_list(out, &group, false, true);
                out.push_str("</div>\n");
            }
            out.push_str("</section>\n");
        }
        if !any {
            out.push_str("<p class=\"none\">Nobody wrote a note.</p>\n");
        }
        out.push_str("</section>\n");
    }

    /// A list of notes; `with_photos` embeds their photos (the notes by phase and category do,
    /// where each note stands once; elsewhere the byline counts them).
    fn note_list(&self, out: &mut String, notes: &[&Note], with_phase: bool, with_photos: bool) {
        out.push_str("<ul class=\"notes\">\n");
        for note in notes {
            let mut marks = String::new();
            if note.pinned {
                marks.push_str("<span class=\"mark\">Pinned</span> ");
            }
            if note.highlighted {
                marks.push_str("<span class=\"mark\">Highlighted</span> ");
            }
            let _ = write!(
                out,
                "<li class=\"note\">{marks}<span class=\"text\">{}</span> <span class=\"by\">{}</span>",
                esc(note.text.trim()),
                esc(&self.byline(note, with_phase))
            );
            if with_photos {
                self.note_photos(out, note);
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }

    /// The note's shown photos after its text, in the author's order; a photo the lab does not
    /// have (never uploaded) is a line saying so.
    fn note_photos(&self, out: &mut String, note: &Note) {
        let shown: Vec<&NotePhoto> = shown_photos(note).collect();
        if shown.is_empty() {
            return;
        }
        let name = note.author_name.trim();
        let author = if name.is_empty() { "someone" } else { name };
        let mut embedded = self.embedded.borrow_mut();
        out.push_str("<div class=\"photos\">");
        for (i, photo) in shown.iter().enumerate() {
            let Some((uses, uri)) = embedded.photos.get_mut(&photo.id) else {
                continue;
            };
            match uri {
                Some(uri) => {
                    let alt = format!("Photo {} of {} on {author}'s note", i + 1, shown.len());
                    let _ = write!(
                        out,
                        "<figure class=\"photo\"><img src=\"{uri}\" alt=\"{}\"></figure>",
                        esc(&alt)
                    );
                }
                None => out.push_str("<p class=\"missing\">A photo was not uploaded.</p>"),
            }
            *uses -= 1;
            if *uses == 0 {
                embedded.photos.remove(&photo.id);
            }
        }
        out.push_str("</div>");
    }

    /// `— Ana · Lesson 1, minute 12 · time-out 2 · 3 picks · 2 reactions · about Jo, Sam`.
    fn byline(&self, note: &Note, with_phase: bool) -> String {
        self.byline_with(note, with_phase, true)
    }

    /// The byline, with or without the note's picks (the picks list shows them on their own).
    /// A phrase ("minute 12", "time-out 2") never breaks across lines.
    fn byline_with(&self, note: &Note, with_phase: bool, with_picks: bool) -> String {
        let keep = |text: String| text.replace(' ', "\u{a0}");
        let mut parts = Vec::new();
        let name = note.author_name.trim();
        parts.push(if name.is_empty() {
            "someone".to_owned()
        } else {
            name.to_owned()
        });
        let minute = self.minute_of(note).map(|m| keep(format!("minute {m}")));
        match (with_phase, minute) {
            (true, Some(m)) => parts.push(format!("{}, {m}", keep(self.phase_label(&note.phase)))),
            (true, None) => parts.push(keep(self.phase_label(&note.phase))),
            (false, Some(m)) => parts.push(m),
            (false, None) => {}
        }
        if let Some(n) = self.timeout_number(&note.timeout_id) {
            parts.push(keep(format!("time-out {n}")));
        }
        let picks = self.picks.get(note.id.as_str()).copied().unwrap_or(0);
        if picks > 0 && with_picks {
            parts.push(keep(plural(picks, "pick", "picks")));
        }
        if note.reactions > 0 {
            parts.push(keep(plural(note.reactions, "reaction", "reactions")));
        }
        let photos = shown_photos(note).count();
        if photos > 0 {
            parts.push(keep(plural(photos, "photo", "photos")));
        }
        let children: Vec<&str> = note
            .children
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .collect();
        if !children.is_empty() {
            parts.push(format!("about {}", children.join(", ")));
        }
        format!("\u{2014} {}", parts.join(" \u{b7} "))
    }
}

fn first_set<'s>(board: &'s str, lab: &'s str, fallback: &'s str) -> &'s str {
    if !board.trim().is_empty() {
        board.trim()
    } else if !lab.trim().is_empty() {
        lab.trim()
    } else {
        fallback
    }
}

fn sort_notes(notes: &mut [&Note]) {
    notes.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
}

/// The record's style: a quiet page for screen and paper. Words never break inside (only a
/// run of letters longer than a whole line may wrap), headings stay with what follows, and a
/// note, a time-out or a table row never splits across pages.
const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
html { font: 11pt/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #16181d; background: #fff; }
body { margin: 0; }
.record { max-width: 58rem; margin: 0 auto; padding: 2rem 1.5rem 3rem; }
p, li, td, th, dd, h1, h2, h3, h4 { overflow-wrap: break-word; word-break: normal; hyphens: manual; }
h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; line-height: 1.2; }
h1 { font-size: 1.9rem; margin: .2rem 0 .4rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 2px solid #16181d; }
h3 { font-size: 1.05rem; margin: 1.1rem 0 .4rem; }
h4 { font-size: .95rem; margin: .8rem 0 .3rem; color: #333a45; }
.kicker { margin: 0; text-transform: uppercase; letter-spacing: .08em; font-size: .8rem; color: #4a5260; }
.meta { margin: 0 0 .2rem; font-size: 1.05rem; }
.state { margin: 0 0 .8rem; color: #4a5260; }
.details { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: .8rem 0; }
.details dt { font-weight: 600; }
.details dd { margin: 0; white-space: pre-line; }
.totals { list-style: none; padding: 0; margin: .6rem 0 0; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; font-weight: 600; }
.count { font-weight: 400; color: #4a5260; font-size: .85em; margin-left: .4rem; }
.sub, .none { color: #4a5260; margin: .2rem 0 .5rem; }
table { width: 100%; border-collapse: collapse; margin: .3rem 0 .8rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid #c9ced6; }
thead th { border-bottom: 2px solid #16181d; font-size: .9rem; }
tr { break-inside: avoid; page-break-inside: avoid; }
.phases td:nth-child(n+5), .phases th:nth-child(n+5) { text-align: right; }
.table-wrap { overflow-x: auto; }
.compare { table-layout: fixed; }
.compare thead th:first-child { width: 9rem; }
.compare th[scope=row] .count { display: block; margin: .1rem 0 0; }
.compare .facts td, .compare .facts th { font-weight: 600; background: #f1f3f6; }
ul.notes, ol.notes, ul.compact { margin: .2rem 0 .6rem; padding-left: 1.1rem; }
ul.compact { padding-left: 1rem; }
li { margin: .15rem 0 .35rem; break-inside: avoid; page-break-inside: avoid; }
.text { white-space: pre-line; }
.by { color: #4a5260; font-size: .88em; }
.mark, .badge { display: inline-block; font-size: .75em; font-weight: 700; text-transform: uppercase; letter-spacing: .04em; border: 1px solid #4a5260; border-radius: 3px; padding: 0 .3em; margin-right: .2em; }
.timeout { border-left: 4px solid #b3261e; padding: .1rem 0 .1rem .8rem; margin: .8rem 0 1rem; break-inside: avoid; page-break-inside: avoid; }
.timeout h3 { margin-top: .2rem; }
.timeout .when { font-weight: 400; color: #4a5260; }
.tnote { font-style: italic; margin: .2rem 0 .4rem; white-space: pre-line; }
.coaches { columns: 2 18rem; column-gap: 2rem; }
.coach { break-inside: avoid; page-break-inside: avoid; }
.coach h3 { margin-top: .4rem; }
.coach ul { margin: .2rem 0 .8rem; padding-left: 1.1rem; }
.agreements li, .agreed li { font-size: 1.02rem; }
.photos { display: flex; flex-wrap: wrap; gap: .5rem; margin: .4rem 0 .2rem; }
.photo { margin: 0; max-width: 100%; break-inside: avoid; page-break-inside: avoid; }
.photo img { display: block; max-width: 100%; max-height: 24rem; width: auto; height: auto; border: 1px solid #c9ced6; }
.missing { margin: .2rem 0; color: #4a5260; font-style: italic; }
.made { margin-top: 2.5rem; padding-top: .6rem; border-top: 1px solid #c9ced6; color: #4a5260; font-size: .85rem; }
@media screen and (max-width: 40rem) {
  .record { padding: 1.2rem .9rem 2rem; }
  h1 { font-size: 1.5rem; }
  table { font-size: .85rem; }
  th, td { padding: .3rem .3rem; }
  .compare thead th:first-child { width: 5.5rem; }
  .details { grid-template-columns: 1fr; gap: .1rem; }
  .details dd { margin-bottom: .5rem; }
}
@media print { .table-wrap { overflow: visible; } }
@page { margin: 16mm 14mm 18mm; }
@media print {
  html { font-size: 10.5pt; }
  .record { max-width: none; padding: 0; }
  h2 { margin-top: 1.4rem; }
  .compare .facts td, .compare .facts th { background: none; }
  .photo img { max-height: 9cm; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ObjType, ReadDoc, ROOT};
    use labboard_protocol::board::{new_board, LabInfo};

    const START: i64 = 1_796_378_400_000; // 2026-12-04T10:00:00Z

    fn lab() -> RecordLab {
        RecordLab {
            title: "Making ten".into(),
            school: "Oak <School>".into(),
            grade: "2".into(),
            date: "2026-12-04".into(),
            ended_at: Some(START + 4 * 3_600_000),
        }
    }

    fn clock() -> Clock {
        Clock {
            utc_offset_minutes: -300,
            now_ms: START + 5 * 3_600_000,
        }
    }

    fn board() -> Automerge {
        let info = LabInfo {
            title: "Making ten".into(),
            school: "Oak <School>".into(),
            grade: "2".into(),
            date: "2026-12-04".into(),
        };
        let mut doc = new_board(&info, ActorId::random());
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let phases = tx.get(ROOT, "phases")?.unwrap().1;
            for (id, start, end) in [
                ("lesson-1", START, START + 3_600_000),
                ("debrief-1", START + 3_600_000, START + 5_400_000),
                ("lesson-2", START + 5_400_000, START + 9_000_000),
            ] {
                let phase = tx.get(&phases, id)?.unwrap().1;
                tx.put(&phase, "startedAt", start)?;
                tx.put(&phase, "endedAt", end)?;
            }
            let timeouts = tx.get(ROOT, "timeouts")?.unwrap().1;
            let t = tx.put_object(&timeouts, "t1", ObjType::Map)?;
            tx.put(&t, "phase", "lesson-1")?;
            tx.put(&t, "calledBy", "Ana")?;
            tx.put(&t, "calledById", "a")?;
            tx.put(&t, "startedAt", START + 12 * 60_000)?;
            tx.put(&t, "endedAt", START + 14 * 60_000 + 30_000)?;
            tx.put(&t, "note", "Why did she <count> on?")?;
            let notes = tx.get(ROOT, "notes")?.unwrap().1;
            for (id, text, phase, at, hidden, timeout) in [
                (
                    "n1",
                    "Counted on from 8 & made ten",
                    "lesson-1",
                    START + 13 * 60_000,
                    false,
                    "t1",
                ),
                (
                    "n2",
                    "Drew ten frames",
                    "lesson-2",
                    START + 5_460_000,
                    false,
                    "",
                ),
                (
                    "n3",
                    "Secretly hidden remark",
                    "lesson-1",
                    START + 60_000,
                    true,
                    "",
                ),
            ] {
                let note = tx.put_object(&notes, id, ObjType::Map)?;
                tx.put(&note, "text", text)?;
                tx.put(&note, "category", "strategies")?;
                tx.put(&note, "authorName", "Bea")?;
                tx.put(&note, "authorId", "b")?;
                tx.put(&note, "createdAt", at)?;
                tx.put(&note, "phase", phase)?;
                tx.put(&note, "hidden", hidden)?;
                tx.put(&note, "timeoutId", timeout)?;
                tx.put_object(&note, "children", ObjType::List)?;
                tx.put_object(&note, "reactions", ObjType::Map)?;
            }
            let agreements = tx.get(ROOT, "agreements")?.unwrap().1;
            let a = tx.put_object(&agreements, "a1", ObjType::Map)?;
            tx.put(&a, "text", "Launch with a smaller number")?;
            tx.put(&a, "owner", "Teacher")?;
            tx.put(&a, "phase", "debrief-1")?;
            tx.put(&a, "createdAt", START + 4_000_000)?;
            tx.put(&a, "order", 1.0)?;
            let steps = tx.get(ROOT, "nextSteps")?.unwrap().1;
            let s = tx.put_object(&steps, "s1", ObjType::Map)?;
            tx.put(&s, "text", "Try number talks on Monday")?;
            tx.put(&s, "authorId", "b")?;
            tx.put(&s, "authorName", "Bea")?;
            tx.put(&s, "phase", "debrief-2")?;
            tx.put(&s, "createdAt", START + 10_000_000)?;
            let picks = tx.get(ROOT, "picks")?.unwrap().1;
            tx.put(&picks, "a:n1", START + 9_100_000)?;
            Ok(())
        })
        .unwrap();
        assert!(doc.get(ROOT, "nextSteps").unwrap().is_some());
        doc
    }

    #[test]
    fn the_record_holds_the_board_and_leaves_hidden_notes_out() {
        let html = render(&lab(), &board(), clock(), &no_photos).unwrap();
        for expected in [
            "<h1>Making ten</h1>",
            "Oak &lt;School&gt; \u{b7} Grade 2 \u{b7} December 4, 2026",
            "Ended December 4, 2026 at 9:00\u{a0}AM",
            "Times are UTC\u{2212}05:00",
            "Counted on from 8 &amp; made ten",
            "Drew ten frames",
            "Launch with a smaller number",
            "Try number talks on Monday",
            "Why did she &lt;count&gt; on?",
            "Called by Ana at 5:12\u{a0}AM \u{b7} 2 min 30 s",
            "Lesson 1 beside Lesson 2",
            "Agreed before Lesson 2",
            "1 hidden, left out",
            "1 pick",
        ] {
            assert!(html.contains(expected), "missing {expected:?}");
        }
        assert!(!html.contains("Secretly hidden remark"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<count>"));
    }

    #[test]
    fn a_note_during_a_time_out_is_listed_under_it() {
        let html = render(&lab(), &board(), clock(), &no_photos).unwrap();
        let timeouts = &html[html.find("id=\"timeouts\"").unwrap()..];
        let timeouts = &timeouts[..timeouts.find("</section>").unwrap()];
        assert!(timeouts.contains("Counted on from 8"), "{timeouts}");
        assert!(!timeouts.contains("Drew ten frames"));
        assert!(timeouts.contains("Lesson 1, minute 12"));
    }

    #[test]
    fn an_empty_board_reads_as_a_record_of_nothing_yet() {
        let doc = new_board(&LabInfo::default(), ActorId::random());
        let html = render(&RecordLab::default(), &doc, clock(), &no_photos).unwrap();
        assert!(html.contains("<h1>Math lab</h1>"));
        assert!(html.contains("Nobody wrote a note."));
        assert!(html.contains("Nobody called a time-out."));
        assert!(html.contains("In progress"));
    }

    fn no_photos(_: &str) -> Result<Option<Photo>, StorageError> {
        Ok(None)
    }

    #[test]
    fn photos_of_visible_notes_are_embedded_once_and_hidden_ones_counted() {
        let id = |n: u8| crate::photos::id_of(&[n]);
        let mut doc = board();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let notes = tx.get(ROOT, "notes")?.unwrap().1;
            let with_photos = |tx: &mut automerge::transaction::Transaction<'_>,
                               note: &str,
                               ids: &[String]|
             -> Result<automerge::ObjId, automerge::AutomergeError> {
                let note = tx.get(&notes, note)?.unwrap().1;
                let list = tx.put_object(&note, "photos", ObjType::List)?;
                for (i, id) in ids.iter().enumerate() {
                    tx.insert(&list, i, id.as_str())?;
                }
                Ok(note)
            };
            // n1: photo 1, a hidden photo 2, photo 3 (never uploaded), a repeat, a bad id.
            let n1 = with_photos(
                tx,
                "n1",
                &[id(1), id(2), id(3), id(1), "NOT-AN-ID".to_owned()],
            )?;
            let hidden = tx.put_object(&n1, "hiddenPhotos", ObjType::Map)?;
            tx.put(&hidden, id(2).as_str(), true)?;
            // n3 is hidden: its photo 4 is left out.
            with_photos(tx, "n3", &[id(4)])?;
            Ok(())
        })
        .unwrap();
        let read = RefCell::new(Vec::new());
        let source = |photo: &str| -> Result<Option<Photo>, StorageError> {
            read.borrow_mut().push(photo.to_owned());
            Ok((photo != id(3)).then(|| Photo {
                content_type: "image/png".into(),
                bytes: vec![0xAB; 5],
            }))
        };
        let html = render(&lab(), &doc, clock(), &source).unwrap();
        // Read once each: only the shown photos of visible notes.
        let mut read = read.into_inner();
        read.sort();
        let mut expected = vec![id(1), id(3)];
        expected.sort();
        assert_eq!(read, expected);
        let img =
            "<img src=\"data:image/png;base64,q6urq6s=\" alt=\"Photo 1 of 2 on Bea&#39;s note\">";
        assert_eq!(html.matches("<img ").count(), 1, "{html}");
        assert!(html.contains(img));
        assert!(html.contains("A photo was not uploaded."));
        assert!(html.contains("2 hidden photos, left out"));
        assert!(html.contains("<li>2 photos</li>"));
        assert!(html.contains("img-src data:\""));
        // Elsewhere the note's byline counts its photos.
        let timeouts = &html[html.find("id=\"timeouts\"").unwrap()..];
        let timeouts = &timeouts[..timeouts.find("</section>").unwrap()];
        assert!(timeouts.contains("2\u{a0}photos") && !timeouts.contains("<img"));
    }

    #[test]
    fn a_photo_store_failure_is_an_error_not_a_record() {
        let mut doc = board();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let notes = tx.get(ROOT, "notes")?.unwrap().1;
            let note = tx.get(&notes, "n2")?.unwrap().1;
            let list = tx.put_object(&note, "photos", ObjType::List)?;
            tx.insert(&list, 0, crate::photos::id_of(b"x").as_str())?;
            Ok(())
        })
        .unwrap();
        let failing =
            |_: &str| -> Result<Option<Photo>, StorageError> { Err(StorageError::Closed) };
        assert!(matches!(
            render(&lab(), &doc, clock(), &failing),
            Err(ExportError::Photos(StorageError::Closed))
        ));
    }

    #[test]
    fn spans_and_days_read_naturally() {
        assert_eq!(span(45_000), "45 s");
        assert_eq!(span(150_000), "2 min 30 s");
        assert_eq!(span(12 * 60_000), "12 min");
        assert_eq!(span(3_900_000), "1 h 05 min");
        assert_eq!(day_of_date("2026-12-04"), "December 4, 2026");
        assert_eq!(day_of_date("next Tuesday"), "next Tuesday");
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
