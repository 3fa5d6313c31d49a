//! A lab's board read leniently, for the research export and the printable record: whatever is
//! missing or of another type reads as absent or empty, so that any loadable board can be read.

use std::collections::{BTreeMap, HashMap};

use automerge::{Automerge, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use labboard_protocol::board::MAX_NOTE_PHOTOS;

use crate::export::ExportError;

/// How many picks each person has when the lab does not say (`lab.pickLimit` absent); the web
/// client's default too.
pub const DEFAULT_PICK_LIMIT: usize = 7;

pub(crate) struct Note {
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) category: String,
    pub(crate) author_name: String,
    pub(crate) author_id: String,
    pub(crate) created_at: i64,
    pub(crate) children: Vec<String>,
    pub(crate) reactions: usize,
    pub(crate) phase: String,
    pub(crate) minute: Option<i64>,
    pub(crate) timeout_id: String,
    pub(crate) pinned: bool,
    pub(crate) highlighted: bool,
    pub(crate) hidden: bool,
    pub(crate) cluster_id: String,
    /// The note's photos in the order the author added them: valid ids only, each once, the
    /// first [`MAX_NOTE_PHOTOS`], as the web client reads them.
    pub(crate) photos: Vec<NotePhoto>,
}

/// A photo of a note: its id (the SHA-256 of its bytes) and whether the facilitator hid it
/// (`notes.<id>.hiddenPhotos`).
pub(crate) struct NotePhoto {
    pub(crate) id: String,
    pub(crate) hidden: bool,
}

pub(crate) struct Timeout {
    pub(crate) id: String,
    pub(crate) phase: String,
    pub(crate) called_by: String,
    pub(crate) called_by_id: String,
    pub(crate) started_at: i64,
    pub(crate) ended_at: Option<i64>,
    pub(crate) note: String,
}

pub(crate) struct Agreement {
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) owner: String,
    pub(crate) phase: String,
    pub(crate) created_at: i64,
    pub(crate) order: f64,
}

pub(crate) struct NextStep {
    pub(crate) id: String,
    pub(crate) text: String,
    pub(crate) author_id: String,
    pub(crate) author_name: String,
    pub(crate) phase: String,
    pub(crate) created_at: i64,
}

/// Loads a saved board for reading, contained: a board that cannot be loaded is an error, never
/// a panic.
pub fn load(bytes: &[u8]) -> Result<Automerge, ExportError> {
    crate::ingest::contained(|| Automerge::load(bytes))
        .map_err(ExportError::Load)?
        .map_err(|err| ExportError::Load(err.to_string()))
}

/// The lab's details as the board holds them (the facilitator may edit them on the board).
#[derive(Default)]
pub(crate) struct LabDetails {
    pub(crate) title: String,
    pub(crate) school: String,
    pub(crate) grade: String,
    pub(crate) date: String,
    pub(crate) problem_of_practice: String,
    pub(crate) mathematical_goal: String,
    pub(crate) lesson_task: String,
}

/// A phase, a category or a cluster: an id, its label and its place in display order.
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) order: f64,
    /// Phases only: when the phase started and ended.
    pub(crate) started_at: Option<i64>,
    pub(crate) ended_at: Option<i64>,
}

/// The parts of a board the export and the record use, read leniently.
pub(crate) struct Board {
    pub(crate) lab: LabDetails,
    pub(crate) pick_limit: usize,
    /// Phases, categories and clusters in display order (by `order`, then id).
    pub(crate) phase_list: Vec<Item>,
    pub(crate) category_list: Vec<Item>,
    pub(crate) cluster_list: Vec<Item>,
    /// Labels by id.
    pub(crate) phases: HashMap<String, String>,
    pub(crate) categories: HashMap<String, String>,
    pub(crate) clusters: HashMap<String, String>,
    /// Alias -> when it was added.
    pub(crate) children: BTreeMap<String, i64>,
    pub(crate) notes: Vec<Note>,
    pub(crate) timeouts: Vec<Timeout>,
    pub(crate) agreements: Vec<Agreement>,
    pub(crate) next_steps: Vec<NextStep>,
    /// `(authorId, noteId, time)` of every pick.
    pub(crate) picks: Vec<(String, String, i64)>,
}

impl Board {
    pub(crate) fn read(doc: &Automerge) -> Self {
        let r = Reader(doc);
        let lab = r.map(&ROOT, "lab");
        let pick_limit = lab
            .as_ref()
            .and_then(|lab| r.int(lab, "pickLimit"))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_PICK_LIMIT);
        let details = lab
            .as_ref()
            .map(|lab| LabDetails {
                title: r.string(lab, "title"),
                school: r.string(lab, "school"),
                grade: r.string(lab, "grade"),
                date: r.string(lab, "date"),
                problem_of_practice: r.string(lab, "problemOfPractice"),
                mathematical_goal: r.string(lab, "mathematicalGoal"),
                lesson_task: r.string(lab, "lessonTask"),
            })
            .unwrap_or_default();
        let items = |collection: &str| -> Vec<Item> {
            let mut items: Vec<Item> = r
                .entries(&ROOT, collection)
                .into_iter()
                .map(|(id, obj)| Item {
                    label: r.string(&obj, "label"),
                    order: r.number(&obj, "order").unwrap_or(f64::MAX),
                    started_at: r.int(&obj, "startedAt"),
                    ended_at: r.int(&obj, "endedAt"),
                    id,
                })
                .collect();
            items.sort_by(|a, b| a.order.total_cmp(&b.order).then(a.id.cmp(&b.id)));
            items
        };
        let labels = |items: &[Item]| -> HashMap<String, String> {
            items
                .iter()
                .map(|item| (item.id.clone(), item.label.clone()))
                .collect()
        };
        let phase_list = items("phases");
        let category_list = items("categories");
        let cluster_list = items("clusters");
        let children = r
            .entries(&ROOT, "children")
            .into_iter()
            .map(|(alias, obj)| {
                let added_at = r.int(&obj, "addedAt").unwrap_or(i64::MAX);
                (alias, added_at)
            })
            .collect();
        let notes = r
            .entries(&ROOT, "notes")
            .into_iter()
            .map(|(id, n)| Note {
                text: r.string(&n, "text"),
                category: r.string(&n, "category"),
                author_name: r.string(&n, "authorName"),
                author_id: r.string(&n, "authorId"),
                created_at: r.int(&n, "createdAt").unwrap_or(0),
                children: r.strings(&n, "children"),
                reactions: r.map(&n, "reactions").map_or(0, |m| doc.length(&m)),
                phase: r.string(&n, "phase"),
                minute: r.int(&n, "minute"),
                timeout_id: r.string(&n, "timeoutId"),
                pinned: r.bool(&n, "pinned"),
                highlighted: r.bool(&n, "highlighted"),
                hidden: r.bool(&n, "hidden"),
                cluster_id: r.string(&n, "clusterId"),
                photos: r.photos(&n),
                id,
            })
            .collect();
        let timeouts = r
            .entries(&ROOT, "timeouts")
            .into_iter()
            .map(|(id, t)| Timeout {
                phase: r.string(&t, "phase"),
                called_by: r.string(&t, "calledBy"),
                called_by_id: r.string(&t, "calledById"),
                started_at: r.int(&t, "startedAt").unwrap_or(0),
                ended_at: r.int(&t, "endedAt"),
                note: r.string(&t, "note"),
                id,
            })
            .collect();
        let agreements = r
            .entries(&ROOT, "agreements")
            .into_iter()
            .map(|(id, a)| Agreement {
                text: r.string(&a, "text"),
                owner: r.string(&a, "owner"),
                phase: r.string(&a, "phase"),
                created_at: r.int(&a, "createdAt").unwrap_or(0),
                order: r.number(&a, "order").unwrap_or(0.0),
                id,
            })
            .collect();
        let next_steps = r
            .entries(&ROOT, "nextSteps")
            .into_iter()
            .map(|(id, s)| NextStep {
                text: r.string(&s, "text"),
                author_id: r.string(&s, "authorId"),
                author_name: r.string(&s, "authorName"),
                phase: r.string(&s, "phase"),
                created_at: r.int(&s, "createdAt").unwrap_or(0),
                id,
            })
            .collect();
        let picks = r.map(&ROOT, "picks").map_or_else(Vec::new, |picks| {
            doc.keys(&picks)
                .filter_map(|key| {
                    let (author, note) = key.split_once(':')?;
                    let at = r.int(&picks, &key).unwrap_or(0);
                    Some((author.to_owned(), note.to_owned(), at))
                })
                .collect()
        });
        Self {
            lab: details,
            pick_limit,
            phases: labels(&phase_list),
            categories: labels(&category_list),
            clusters: labels(&cluster_list),
            phase_list,
            category_list,
            cluster_list,
            children,
            notes,
            timeouts,
            agreements,
            next_steps,
            picks,
        }
    }

    /// Picks per note id, counting each person's first `pick_limit` picks by time, as the
    /// board does.
    pub(crate) fn pick_counts(&self) -> HashMap<&str, usize> {
        let mut by_person: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
        for (author, note, at) in &self.picks {
            by_person.entry(author).or_default().push((*at, note));
        }
        let mut counts = HashMap::new();
        for mut picks in by_person.into_values() {
            picks.sort();
            for (_, note) in picks.into_iter().take(self.pick_limit) {
                *counts.entry(note).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// How many notes a board holds, for the lab's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoteCounts {
    /// Every note, hidden ones included.
    pub notes: usize,
    /// Notes the facilitator hid from the board.
    pub hidden: usize,
}

impl NoteCounts {
    /// Counts the notes of a board, reading as leniently as the export: an entry of `notes`
    /// that is not a map is no note.
    pub fn of(doc: &Automerge) -> Self {
        let r = Reader(doc);
        let notes = r.entries(&ROOT, "notes");
        Self {
            hidden: notes.iter().filter(|(_, n)| r.bool(n, "hidden")).count(),
            notes: notes.len(),
        }
    }
}

/// Lenient reads: a missing value or one of another type is `None` (or empty).
pub(crate) struct Reader<'a>(&'a Automerge);

impl Reader<'_> {
    fn value(&self, obj: &ObjId, key: &str) -> Option<(Value<'_>, ObjId)> {
        self.0.get(obj, key).ok().flatten()
    }

    fn map(&self, obj: &ObjId, key: &str) -> Option<ObjId> {
        match self.value(obj, key)? {
            (Value::Object(ObjType::Map), id) => Some(id),
            _ => None,
        }
    }

    /// The maps of a collection, by key.
    fn entries(&self, obj: &ObjId, key: &str) -> Vec<(String, ObjId)> {
        let Some(map) = self.map(obj, key) else {
            return Vec::new();
        };
        self.0
            .keys(&map)
            .filter_map(|k| {
                let id = self.map(&map, &k)?;
                Some((k, id))
            })
            .collect()
    }

    /// A string or a text object.
    fn string(&self, obj: &ObjId, key: &str) -> String {
        match self.value(obj, key) {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(text) => text.to_string(),
                _ => String::new(),
            },
            Some((Value::Object(ObjType::Text), id)) => self.0.text(&id).unwrap_or_default(),
            _ => String::new(),
        }
    }

    fn strings(&self, obj: &ObjId, key: &str) -> Vec<String> {
        let Some((Value::Object(ObjType::List), list)) = self.value(obj, key) else {
            return Vec::new();
        };
        (0..self.0.length(&list))
            .filter_map(|i| match self.0.get(&list, i).ok().flatten()? {
                (Value::Scalar(s), _) => match s.as_ref() {
                    ScalarValue::Str(text) => Some(text.to_string()),
                    _ => None,
                },
                (Value::Object(ObjType::Text), id) => self.0.text(&id).ok(),
                _ => None,
            })
            .collect()
    }

    /// A note's `photos`, leniently: ids that are not 64 lowercase hex digits are skipped, a
    /// repeated id counts once, and only the first [`MAX_NOTE_PHOTOS`] are taken. A photo is
    /// hidden when `hiddenPhotos` maps its id to `true`.
    fn photos(&self, note: &ObjId) -> Vec<NotePhoto> {
        let hidden = self.map(note, "hiddenPhotos");
        let mut ids: Vec<String> = Vec::new();
        for id in self.strings(note, "photos") {
            if ids.len() == MAX_NOTE_PHOTOS {
                break;
            }
            if crate::photos::valid_id(&id) && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.into_iter()
            .map(|id| NotePhoto {
                hidden: hidden.as_ref().is_some_and(|map| self.bool(map, &id)),
                id,
            })
            .collect()
    }

    fn int(&self, obj: &ObjId, key: &str) -> Option<i64> {
        match self.value(obj, key)? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Int(n) | ScalarValue::Timestamp(n) => Some(*n),
                ScalarValue::Uint(n) => i64::try_from(*n).ok(),
                // The JS client writes whole numbers as ints, but an f64 is a number too.
                ScalarValue::F64(n) if n.is_finite() => Some(n.round() as i64),
                _ => None,
            },
            _ => None,
        }
    }

    fn number(&self, obj: &ObjId, key: &str) -> Option<f64> {
        match self.value(obj, key)? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::F64(n) => Some(*n),
                ScalarValue::Int(n) => Some(*n as f64),
                ScalarValue::Uint(n) => Some(*n as f64),
                _ => None,
            },
            _ => None,
        }
    }

    fn bool(&self, obj: &ObjId, key: &str) -> bool {
        matches!(
            self.value(obj, key),
            Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Boolean(true))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ActorId;
    use labboard_protocol::board::{new_board, LabInfo};

    #[test]
    fn a_notes_photos_are_read_as_the_web_client_reads_them() {
        let id = |n: u8| crate::photos::id_of(&[n]);
        let mut doc = new_board(&LabInfo::default(), ActorId::random());
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            let notes = tx.get(ROOT, "notes")?.unwrap().1;
            let note = tx.put_object(&notes, "n1", ObjType::Map)?;
            let list = tx.put_object(&note, "photos", ObjType::List)?;
            // Invalid ids, a repeat and a number are skipped; only the first 4 valid count.
            let upper = id(9).to_uppercase();
            for (i, value) in [
                id(1),
                upper,
                id(2),
                id(1),
                "x".to_owned(),
                id(3),
                id(4),
                id(5),
            ]
            .iter()
            .enumerate()
            {
                tx.insert(&list, i, value.as_str())?;
            }
            tx.insert(&list, 8, 7_i64)?;
            let hidden = tx.put_object(&note, "hiddenPhotos", ObjType::Map)?;
            tx.put(&hidden, id(2).as_str(), true)?;
            tx.put(&hidden, id(3).as_str(), "true")?;
            tx.put(&hidden, id(5).as_str(), true)?;
            // Photos of another type read as none.
            let other = tx.put_object(&notes, "n2", ObjType::Map)?;
            tx.put(&other, "photos", id(1).as_str())?;
            Ok(())
        })
        .unwrap();
        let board = Board::read(&doc);
        let note = |id: &str| board.notes.iter().find(|n| n.id == id).unwrap();
        let photos: Vec<(String, bool)> = note("n1")
            .photos
            .iter()
            .map(|p| (p.id.clone(), p.hidden))
            .collect();
        assert_eq!(
            photos,
            vec![
                (id(1), false),
                (id(2), true),
                (id(3), false),
                (id(4), false)
            ]
        );
        assert!(note("n2").photos.is_empty());
    }
}
