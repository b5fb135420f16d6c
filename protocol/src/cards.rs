//! Shared outlet cards: one Automerge document per outlet, edited offline by agents' phones
//! and key users, merged by Automerge, conflicts shown (docs/protocol.md §7.7 and §8.6).
//!
//! Everything about the card's shape lives here, so that the phone, the server, the back
//! office and the simulators build, read and check cards alike:
//! - [`genesis`]: the one change every card starts from, built identically everywhere (a fixed
//!   actor and time), so that no two replicas create rival `notes` or `contacts` objects;
//! - [`edit`]: one saved form as one Automerge change by the editor's actor;
//! - [`CardView::read`]: the card as people see it, each field with the values that conflict
//!   with the one shown and who entered them;
//! - [`check_chunk`] and [`validate`]: what a receiver accepts, checked on the bytes before
//!   parsing and on the merged document after applying (only the card's fields, each
//!   value's writer the actor it claims, limits that no merge can be pushed past).
use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, Change, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

/// The actor of the genesis change: the same 16 bytes on every replica.
pub const GENESIS_ACTOR: &[u8; 16] = b"fieldsync.card.0";

/// The card's objects, created by the genesis change in this order.
pub const OBJECTS: [(&str, ObjType); 8] = [
    ("contacts", ObjType::Map),
    ("opening", ObjType::Map),
    ("delivery", ObjType::Map),
    ("notes", ObjType::Text),
    ("tags", ObjType::Map),
    ("proposals", ObjType::Map),
    ("decisions", ObjType::Map),
    ("authors", ObjType::Map),
];

/// Weekdays, the keys of `opening` and `delivery`.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Master-data fields an agent may propose a new value for; the key user decides.
pub const PROPOSAL_FIELDS: [&str; 4] = ["name", "address", "location", "channel"];

/// A contact person's fields.
pub const CONTACT_FIELDS: [&str; 3] = ["name", "role", "phone"];

/// Limits a receiver enforces. A change is refused when it makes a measure exceed its limit
/// *and* grow; a card that concurrent edits pushed past a limit stays editable.
pub mod limits {
    /// Changes in one `CardChanged` mutation.
    pub const CHANGES_PER_MUTATION: usize = 32;
    /// Bytes of one change chunk (uncompressed).
    pub const CHANGE_BYTES: usize = 16 * 1024;
    /// Bytes of all changes of one mutation.
    pub const MUTATION_BYTES: usize = 64 * 1024;
    /// Characters of the notes.
    pub const NOTES_CHARS: usize = 4000;
    /// Characters of any other value, and of a contact id or tag.
    pub const VALUE_CHARS: usize = 200;
    pub const KEY_CHARS: usize = 64;
    pub const CONTACTS: usize = 20;
    pub const TAGS: usize = 30;
    /// Bytes of the saved (compacted) document.
    pub const DOCUMENT_BYTES: usize = 512 * 1024;
}

/// Who edits a card: a phone (an agent's device) or a key user in the back office.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    KeyUser,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::KeyUser => "key_user",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "key_user" => Some(Role::KeyUser),
            _ => None,
        }
    }
}

/// Which hours a weekday value gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hours {
    Opening,
    Delivery,
}

impl Hours {
    pub fn key(self) -> &'static str {
        match self {
            Hours::Opening => "opening",
            Hours::Delivery => "delivery",
        }
    }
}

/// One thing a person changed in a saved card form.
#[derive(Debug, Clone, PartialEq)]
pub enum CardEdit {
    /// Adds a contact person (a new id) or changes one; only the fields given are written.
    Contact {
        id: String,
        name: Option<String>,
        role: Option<String>,
        phone: Option<String>,
    },
    RemoveContact {
        id: String,
    },
    /// `value`: "08:00-13:00,14:00-18:00", or "" for closed.
    Hours {
        hours: Hours,
        day: String,
        value: String,
    },
    /// The whole new text; stored as the character-level edits from the current text.
    Notes(String),
    Tag {
        tag: String,
        on: bool,
    },
    /// An agent's proposal of a new master-data value ("lat_e7,lon_e7" for `location`).
    Propose {
        field: String,
        value: String,
    },
    /// A key user's decision on a proposal: recorded in `decisions`, the proposal removed.
    Decide {
        field: String,
        accept: bool,
    },
}

/// Why a card change is refused, or an edit cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardError {
    /// Bytes that are not one uncompressed Automerge change.
    Malformed(String),
    /// Too many or too large changes, or a card pushed past a limit.
    TooLarge(String),
    /// A change by another actor than the sender's.
    ForeignActor(String),
    /// A change depending on changes the receiver does not have.
    MissingDeps,
    /// A change writing something that is not a field of the card.
    NotACardField(String),
}

impl std::fmt::Display for CardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CardError::Malformed(s) => write!(f, "not an outlet card change: {s}"),
            CardError::TooLarge(s) => write!(f, "card change too large: {s}"),
            CardError::ForeignActor(s) => write!(f, "change made by actor {s}, not by this device"),
            CardError::MissingDeps => write!(f, "the change depends on card changes not received"),
            CardError::NotACardField(s) => write!(f, "{s} is not a field of an outlet card"),
        }
    }
}

impl std::error::Error for CardError {}

/// The genesis change's document: every card's first state.
pub fn genesis() -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::from(GENESIS_ACTOR));
    doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default().with_time(0),
        |tx| {
            tx.put(ROOT, "v", 1_i64)?;
            for (key, kind) in OBJECTS {
                tx.put_object(ROOT, key, kind)?;
            }
            Ok(())
        },
    )
    .expect("the genesis change is valid");
    doc
}

/// A card document from stored bytes (a saved document, or concatenated changes): genesis
/// merged with them.
pub fn load(bytes: &[u8]) -> Result<Automerge, CardError> {
    let mut doc = genesis();
    if !bytes.is_empty() {
        doc.load_incremental(bytes)
            .map_err(|e| CardError::Malformed(e.to_string()))?;
    }
    Ok(doc)
}

fn object(doc: &Automerge, key: &str) -> ObjId {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Object(_), id))) => id,
        _ => panic!("a card document always has its genesis objects"),
    }
}

fn scalar_str(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn actor_of(id: &ObjId) -> Option<&ActorId> {
    match id {
        ObjId::Id(_, actor, _) => Some(actor),
        ObjId::Root => None,
    }
}

/// The 16-byte actor id of a device or key user, as hex (the form stored in `authors`).
pub fn actor_hex(actor: &ActorId) -> String {
    actor.to_hex_string()
}

/// Makes one change from a saved form, by `actor`, recorded at `time_ms`; writes the editor's
/// name under `authors` the first time. Returns `None` when nothing changed.
pub fn edit(
    doc: &mut Automerge,
    actor: &ActorId,
    role: Role,
    name: &str,
    time_ms: i64,
    edits: &[CardEdit],
) -> Result<Option<Change>, CardError> {
    let before = doc.clone();
    doc.set_actor(actor.clone());
    let authors = object(doc, "authors");
    let author_value = format!("{}\t{}", role.as_str(), name);
    let hex = actor_hex(actor);
    let current_author = doc
        .get(&authors, hex.as_str())
        .ok()
        .flatten()
        .and_then(|(v, _)| scalar_str(&v));
    let result = doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default().with_time(time_ms),
        |tx| {
            let mut wrote = false;
            for e in edits {
                wrote |= apply_edit(tx, e)?;
            }
            if wrote && current_author.as_deref() != Some(author_value.as_str()) {
                tx.put(&authors, hex.as_str(), author_value.as_str())?;
            }
            Ok(())
        },
    );
    let hash = match result {
        Ok(ok) => ok.hash,
        Err(f) => return Err(CardError::Malformed(f.error.to_string())),
    };
    let Some(hash) = hash else {
        return Ok(None);
    };
    let change = doc
        .get_change_by_hash(&hash)
        .expect("the change just made is in the document");
    if let Err(e) =
        check_chunk(change.raw_bytes()).and_then(|_| validate(&before, doc, actor, role))
    {
        *doc = before;
        return Err(e);
    }
    Ok(Some(change))
}

fn apply_edit(
    tx: &mut automerge::transaction::Transaction<'_>,
    e: &CardEdit,
) -> Result<bool, automerge::AutomergeError> {
    let obj = |tx: &automerge::transaction::Transaction<'_>, key: &str| object_in(tx, key);
    let same = |tx: &automerge::transaction::Transaction<'_>, o: &ObjId, key: &str, v: &str| {
        tx.get_all(o, key)
            .ok()
            .is_some_and(|all| all.len() == 1 && scalar_str(&all[0].0).as_deref() == Some(v))
    };
    match e {
        CardEdit::Contact {
            id,
            name,
            role,
            phone,
        } => {
            let contacts = obj(tx, "contacts");
            let contact = match tx.get(&contacts, id.as_str())? {
                Some((Value::Object(ObjType::Map), c)) => c,
                _ => tx.put_object(&contacts, id.as_str(), ObjType::Map)?,
            };
            let mut wrote = false;
            for (key, value) in [("name", name), ("role", role), ("phone", phone)] {
                if let Some(v) = value
                    && !same(tx, &contact, key, v)
                {
                    put_str(tx, &contact, key, v)?;
                    wrote = true;
                }
            }
            Ok(wrote)
        }
        CardEdit::RemoveContact { id } => {
            let contacts = obj(tx, "contacts");
            if tx.get(&contacts, id.as_str())?.is_none() {
                return Ok(false);
            }
            tx.delete(&contacts, id.as_str())?;
            Ok(true)
        }
        CardEdit::Hours { hours, day, value } => {
            let o = obj(tx, hours.key());
            if same(tx, &o, day, value) {
                return Ok(false);
            }
            put_str(tx, &o, day, value)?;
            Ok(true)
        }
        CardEdit::Notes(text) => {
            let notes = obj(tx, "notes");
            if tx.text(&notes)? == *text {
                return Ok(false);
            }
            tx.update_text(&notes, text)?;
            Ok(true)
        }
        CardEdit::Tag { tag, on } => {
            let tags = obj(tx, "tags");
            let present = tx.get(&tags, tag.as_str())?.is_some();
            match (present, on) {
                (false, true) => tx.put(&tags, tag.as_str(), true)?,
                (true, false) => tx.delete(&tags, tag.as_str())?,
                _ => return Ok(false),
            }
            Ok(true)
        }
        CardEdit::Propose { field, value } => {
            let o = obj(tx, "proposals");
            if same(tx, &o, field, value) {
                return Ok(false);
            }
            put_str(tx, &o, field, value)?;
            Ok(true)
        }
        CardEdit::Decide { field, accept } => {
            let proposals = obj(tx, "proposals");
            let Some((v, _)) = tx.get(&proposals, field.as_str())? else {
                return Ok(false);
            };
            let value = scalar_str(&v).unwrap_or_default();
            let decisions = obj(tx, "decisions");
            let verdict = if *accept { "accepted" } else { "rejected" };
            put_str(tx, &decisions, field, &format!("{verdict}\t{value}"))?;
            tx.delete(&proposals, field.as_str())?;
            Ok(true)
        }
    }
}

/// Writes a string field as a new value of its own. When the field shows a conflict and the
/// value equals the winner, Automerge would only delete the losing values and keep the winner's
/// op (its author, its place in history): a write concurrent with this one would then replace
/// the value with no conflict shown, and this person's choice would be lost. Deleting first and
/// then writing makes it a write like any other, concurrent with what this device has not seen.
fn put_str(
    tx: &mut automerge::transaction::Transaction<'_>,
    obj: &ObjId,
    key: &str,
    value: &str,
) -> Result<(), automerge::AutomergeError> {
    if tx.get_all(obj, key)?.len() > 1 {
        tx.delete(obj, key)?;
    }
    tx.put(obj, key, value)
}

fn object_in(tx: &automerge::transaction::Transaction<'_>, key: &str) -> ObjId {
    match tx.get(ROOT, key) {
        Ok(Some((Value::Object(_), id))) => id,
        _ => panic!("a card document always has its genesis objects"),
    }
}

/// Checks the bytes of one change before anything parses them: a single uncompressed change
/// chunk (type 1) within the size limit. A compressed chunk (type 2) would be inflated by the
/// parser, so it is refused unread; so is a whole document (type 0).
pub fn check_chunk(bytes: &[u8]) -> Result<(), CardError> {
    if bytes.len() > limits::CHANGE_BYTES {
        return Err(CardError::TooLarge(format!(
            "{} bytes in one change (at most {})",
            bytes.len(),
            limits::CHANGE_BYTES
        )));
    }
    if bytes.len() < 9 || bytes[..4] != [0x85, 0x6f, 0x4a, 0x83] {
        return Err(CardError::Malformed("no change chunk header".into()));
    }
    if bytes[8] != 1 {
        return Err(CardError::Malformed(format!(
            "chunk of type {} (only uncompressed changes, type 1, are accepted)",
            bytes[8]
        )));
    }
    Ok(())
}

/// Parses the changes of one `CardChanged` mutation: count and size limits, chunk checks,
/// each change by `actor`.
pub fn parse_changes(chunks: &[Vec<u8>], actor: &ActorId) -> Result<Vec<Change>, CardError> {
    if chunks.is_empty() {
        return Err(CardError::Malformed("no changes".into()));
    }
    if chunks.len() > limits::CHANGES_PER_MUTATION {
        return Err(CardError::TooLarge(format!(
            "{} changes in one mutation (at most {})",
            chunks.len(),
            limits::CHANGES_PER_MUTATION
        )));
    }
    let total: usize = chunks.iter().map(Vec::len).sum();
    if total > limits::MUTATION_BYTES {
        return Err(CardError::TooLarge(format!(
            "{total} bytes in one mutation (at most {})",
            limits::MUTATION_BYTES
        )));
    }
    let mut out = Vec::with_capacity(chunks.len());
    for bytes in chunks {
        check_chunk(bytes)?;
        let change =
            Change::try_from(&bytes[..]).map_err(|e| CardError::Malformed(e.to_string()))?;
        if change.actor_id() != actor {
            return Err(CardError::ForeignActor(actor_hex(change.actor_id())));
        }
        out.push(change);
    }
    Ok(out)
}

/// Applies parsed changes to `doc` after checking that each change's dependencies are in
/// the document or earlier in the list; returns how many were new (0: all were known, a
/// replay). The document is unchanged on error.
pub fn apply(doc: &mut Automerge, changes: Vec<Change>) -> Result<usize, CardError> {
    let mut known: std::collections::HashSet<automerge::ChangeHash> = Default::default();
    let mut fresh = Vec::new();
    for c in changes {
        if doc.get_change_by_hash(&c.hash()).is_some() || known.contains(&c.hash()) {
            continue;
        }
        if c.deps()
            .iter()
            .any(|d| doc.get_change_by_hash(d).is_none() && !known.contains(d))
        {
            return Err(CardError::MissingDeps);
        }
        known.insert(c.hash());
        fresh.push(c);
    }
    let n = fresh.len();
    if n > 0 {
        doc.apply_changes(fresh)
            .map_err(|e| CardError::Malformed(e.to_string()))?;
    }
    Ok(n)
}

/// What a card measures for the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measure {
    pub notes_chars: usize,
    pub contacts: usize,
    pub tags: usize,
}

pub fn measure(doc: &Automerge) -> Measure {
    Measure {
        notes_chars: doc
            .text(object(doc, "notes"))
            .map(|t| t.chars().count())
            .unwrap_or(0),
        contacts: doc.length(object(doc, "contacts")),
        tags: doc.length(object(doc, "tags")),
    }
}

/// Checks the merged document `after` (= `before` plus changes by `writer`): only the card's
/// fields hold values, each of the right type and size; `authors` entries and `decisions`
/// are written only by whom they may be; limits are not exceeded by growth.
pub fn validate(
    before: &Automerge,
    after: &Automerge,
    writer: &ActorId,
    role: Role,
) -> Result<(), CardError> {
    let genesis_actor = ActorId::from(GENESIS_ACTOR);
    // The root: exactly the genesis objects and version, each written once, by genesis.
    for key in after.keys(ROOT) {
        let known = key == "v" || OBJECTS.iter().any(|(k, _)| *k == key);
        if !known {
            return Err(CardError::NotACardField(key));
        }
    }
    for key in std::iter::once("v").chain(OBJECTS.iter().map(|(k, _)| *k)) {
        let all = after.get_all(ROOT, key).unwrap_or_default();
        if all.len() != 1 || actor_of(&all[0].1) != Some(&genesis_actor) {
            return Err(CardError::NotACardField(key.to_string()));
        }
    }
    let notes = object(after, "notes");
    if !after.marks(&notes).map(|m| m.is_empty()).unwrap_or(false) {
        return Err(CardError::NotACardField("notes (marks)".into()));
    }
    let str_values = |obj: &ObjId, key: &str, path: &str| -> Result<(), CardError> {
        for (v, _) in after.get_all(obj, key).unwrap_or_default() {
            match scalar_str(&v) {
                Some(s) if s.chars().count() <= limits::VALUE_CHARS => {}
                Some(_) => return Err(CardError::TooLarge(format!("{path} is too long"))),
                None => return Err(CardError::NotACardField(format!("{path} (not text)"))),
            }
        }
        Ok(())
    };
    for hours in ["opening", "delivery"] {
        let o = object(after, hours);
        for day in after.keys(&o) {
            if !WEEKDAYS.contains(&day.as_str()) {
                return Err(CardError::NotACardField(format!("{hours}/{day}")));
            }
            str_values(&o, &day, &format!("{hours}/{day}"))?;
            for (v, _) in after.get_all(&o, day.as_str()).unwrap_or_default() {
                let s = scalar_str(&v).unwrap_or_default();
                if parse_hours(&s).is_none() {
                    return Err(CardError::NotACardField(format!("{hours}/{day} = {s:?}")));
                }
            }
        }
    }
    let contacts = object(after, "contacts");
    for id in after.keys(&contacts) {
        if id.chars().count() > limits::KEY_CHARS {
            return Err(CardError::TooLarge("contact id".into()));
        }
        for (v, c) in after.get_all(&contacts, id.as_str()).unwrap_or_default() {
            if !matches!(v, Value::Object(ObjType::Map)) {
                return Err(CardError::NotACardField(format!("contacts/{id}")));
            }
            for field in after.keys(&c) {
                if !CONTACT_FIELDS.contains(&field.as_str()) {
                    return Err(CardError::NotACardField(format!("contacts/{id}/{field}")));
                }
                str_values(&c, &field, &format!("contacts/{id}/{field}"))?;
            }
        }
    }
    let tags = object(after, "tags");
    for tag in after.keys(&tags) {
        if tag.is_empty() || tag.chars().count() > limits::KEY_CHARS {
            return Err(CardError::TooLarge(format!("tag {tag:?}")));
        }
        for (v, _) in after.get_all(&tags, tag.as_str()).unwrap_or_default() {
            if !matches!(v, Value::Scalar(ref s) if matches!(s.as_ref(), ScalarValue::Boolean(true)))
            {
                return Err(CardError::NotACardField(format!("tags/{tag}")));
            }
        }
    }
    for map in ["proposals", "decisions"] {
        let o = object(after, map);
        for field in after.keys(&o) {
            if !PROPOSAL_FIELDS.contains(&field.as_str()) {
                return Err(CardError::NotACardField(format!("{map}/{field}")));
            }
            str_values(&o, &field, &format!("{map}/{field}"))?;
            if map == "decisions"
                && role == Role::Agent
                && after
                    .get_all(&o, field.as_str())
                    .unwrap_or_default()
                    .iter()
                    .any(|(_, id)| actor_of(id) == Some(writer))
            {
                return Err(CardError::NotACardField(format!(
                    "decisions/{field} (only a key user decides)"
                )));
            }
        }
    }
    let authors = object(after, "authors");
    for key in after.keys(&authors) {
        for (v, id) in after.get_all(&authors, key.as_str()).unwrap_or_default() {
            let by = actor_of(&id).map(actor_hex).unwrap_or_default();
            if by != key {
                return Err(CardError::ForeignActor(format!(
                    "{by} (writing authors/{key})"
                )));
            }
            str_values(&authors, &key, "authors")?;
            let _ = v;
        }
    }
    let (b, a) = (measure(before), measure(after));
    for (what, before, after, limit) in [
        ("notes", b.notes_chars, a.notes_chars, limits::NOTES_CHARS),
        ("contacts", b.contacts, a.contacts, limits::CONTACTS),
        ("tags", b.tags, a.tags, limits::TAGS),
    ] {
        if after > limit && after > before {
            return Err(CardError::TooLarge(format!(
                "{what}: {after} (at most {limit})"
            )));
        }
    }
    Ok(())
}

/// Checks the saved size of a document against the limit, allowing a card already past it
/// (by concurrent edits) not to grow.
pub fn check_size(before_bytes: usize, after_bytes: usize) -> Result<(), CardError> {
    if after_bytes > limits::DOCUMENT_BYTES && after_bytes > before_bytes {
        return Err(CardError::TooLarge(format!(
            "the card would hold {after_bytes} bytes (at most {})",
            limits::DOCUMENT_BYTES
        )));
    }
    Ok(())
}

/// Parses weekday hours: "" (closed) or comma-separated "HH:MM-HH:MM" ranges.
pub fn parse_hours(s: &str) -> Option<Vec<(u16, u16)>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    s.split(',')
        .map(|r| {
            let (a, b) = r.trim().split_once('-')?;
            let (a, b) = (minutes(a.trim())?, minutes(b.trim())?);
            (a < b).then_some((a, b))
        })
        .collect()
}

/// One field as shown: the value every replica shows, and the concurrent values that lost,
/// each with the actor (hex) who entered it. A later edit that saw them clears them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field {
    pub value: String,
    pub by: String,
    pub conflicts: Vec<(String, String)>,
}

impl Field {
    pub fn is_conflict(&self) -> bool {
        !self.conflicts.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    pub id: String,
    pub name: Field,
    pub role: Field,
    pub phone: Field,
}

/// Who an actor is, as the actor wrote it under `authors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub role: String,
    pub name: String,
}

/// A card as people see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardView {
    pub contacts: Vec<Contact>,
    pub opening: BTreeMap<String, Field>,
    pub delivery: BTreeMap<String, Field>,
    pub notes: String,
    pub tags: Vec<String>,
    pub proposals: BTreeMap<String, Field>,
    /// Per field: "accepted" or "rejected", and the value decided on.
    pub decisions: BTreeMap<String, Field>,
    pub authors: BTreeMap<String, Author>,
}

fn field(doc: &Automerge, obj: &ObjId, key: &str) -> Option<Field> {
    let (winner, winner_id) = doc.get(obj, key).ok().flatten()?;
    let by = |id: &ObjId| actor_of(id).map(actor_hex).unwrap_or_default();
    let conflicts = doc
        .get_all(obj, key)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, id)| *id != winner_id)
        .map(|(v, id)| (scalar_str(&v).unwrap_or_default(), by(&id)))
        .collect();
    Some(Field {
        value: scalar_str(&winner).unwrap_or_default(),
        by: by(&winner_id),
        conflicts,
    })
}

fn fields(doc: &Automerge, key: &str) -> BTreeMap<String, Field> {
    let o = object(doc, key);
    doc.keys(&o)
        .filter_map(|k| Some((k.clone(), field(doc, &o, &k)?)))
        .collect()
}

impl CardView {
    pub fn read(doc: &Automerge) -> CardView {
        let contacts_obj = object(doc, "contacts");
        let contacts = doc
            .keys(&contacts_obj)
            .filter_map(|id| {
                let (_, c) = doc.get(&contacts_obj, id.as_str()).ok().flatten()?;
                let f = |k: &str| field(doc, &c, k).unwrap_or_default();
                Some(Contact {
                    name: f("name"),
                    role: f("role"),
                    phone: f("phone"),
                    id,
                })
            })
            .collect();
        let authors = fields(doc, "authors")
            .into_iter()
            .map(|(actor, f)| {
                let (role, name) = f.value.split_once('\t').unwrap_or(("", &f.value));
                (
                    actor,
                    Author {
                        role: role.to_string(),
                        name: name.to_string(),
                    },
                )
            })
            .collect();
        CardView {
            contacts,
            opening: fields(doc, "opening"),
            delivery: fields(doc, "delivery"),
            notes: doc.text(object(doc, "notes")).unwrap_or_default(),
            tags: doc.keys(object(doc, "tags")).collect(),
            proposals: fields(doc, "proposals"),
            decisions: fields(doc, "decisions"),
            authors,
        }
    }

    /// The name of the person behind an actor, as far as the card knows it.
    pub fn who(&self, actor: &str) -> String {
        self.authors
            .get(actor)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| actor.chars().take(8).collect())
    }

    /// Every conflicting field, as (path, field).
    pub fn conflicts(&self) -> Vec<(String, &Field)> {
        let mut out = Vec::new();
        for c in &self.contacts {
            for (k, f) in [("name", &c.name), ("role", &c.role), ("phone", &c.phone)] {
                if f.is_conflict() {
                    out.push((format!("contacts/{}/{k}", c.id), f));
                }
            }
        }
        for (map, fields) in [
            ("opening", &self.opening),
            ("delivery", &self.delivery),
            ("proposals", &self.proposals),
            ("decisions", &self.decisions),
        ] {
            for (k, f) in fields {
                if f.is_conflict() {
                    out.push((format!("{map}/{k}"), f));
                }
            }
        }
        out
    }
}

/// What a change wrote, as card paths in the order first written ("opening/mon", "notes",
/// "contacts", "tags/vip", "proposals/address"), for a history. Author entries are left out.
pub fn summarize(change: &Change) -> Vec<String> {
    use automerge::legacy::{Key, ObjectId};
    let genesis = ActorId::from(GENESIS_ACTOR);
    let mut out: Vec<String> = Vec::new();
    for op in change.decode().operations {
        // The genesis change makes `v` (op 1) and then the objects, ops 2..=9 in order.
        let object = match &op.obj {
            ObjectId::Id(id) if *id.actor() == genesis && id.counter() >= 2 => OBJECTS
                .get(id.counter() as usize - 2)
                .map(|(name, _)| *name),
            ObjectId::Id(_) => Some("contacts"),
            ObjectId::Root => None,
        };
        let path = match (object, &op.key) {
            (None | Some("authors"), _) => continue,
            (Some(o @ ("contacts" | "notes")), _) => o.to_string(),
            (Some(o), Key::Map(k)) => format!("{o}/{k}"),
            (Some(o), Key::Seq(_)) => o.to_string(),
        };
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// The heads of a document as hex, sorted and comma-separated (stored and compared).
pub fn heads_hex(doc: &Automerge) -> String {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(n: u8) -> ActorId {
        ActorId::from([n; 16])
    }

    fn changed(doc: &mut Automerge, who: u8, role: Role, edits: &[CardEdit]) -> Change {
        edit(
            doc,
            &actor(who),
            role,
            &format!("person {who}"),
            1_000,
            edits,
        )
        .unwrap()
        .expect("something changed")
    }

    fn hours(day: &str, value: &str) -> CardEdit {
        CardEdit::Hours {
            hours: Hours::Opening,
            day: day.into(),
            value: value.into(),
        }
    }

    #[test]
    fn genesis_is_the_same_change_everywhere() {
        let (a, b) = (genesis(), genesis());
        assert_eq!(a.get_heads(), b.get_heads());
        assert_eq!(a.get_heads().len(), 1);
        assert_eq!(
            a.get_heads()[0].to_string(),
            GENESIS_HASH,
            "the genesis change must never change: every stored card depends on it"
        );
    }

    /// The hash of [`genesis`]'s change (a golden value).
    const GENESIS_HASH: &str = include_str!("cards_genesis_hash.txt");

    #[test]
    fn concurrent_sets_of_a_field_converge_and_show_both_authors() {
        let mut a = genesis();
        let mut b = genesis();
        let ca = changed(&mut a, 1, Role::Agent, &[hours("mon", "08:00-18:00")]);
        let cb = changed(&mut b, 2, Role::Agent, &[hours("mon", "09:00-17:00")]);
        apply(&mut a, vec![cb]).unwrap();
        apply(&mut b, vec![ca]).unwrap();
        assert_eq!(a.get_heads(), b.get_heads());
        let (va, vb) = (CardView::read(&a), CardView::read(&b));
        assert_eq!(va, vb);
        let mon = &va.opening["mon"];
        assert!(mon.is_conflict());
        let mut values: Vec<&str> = std::iter::once(mon.value.as_str())
            .chain(mon.conflicts.iter().map(|c| c.0.as_str()))
            .collect();
        values.sort();
        assert_eq!(values, ["08:00-18:00", "09:00-17:00"]);
        let mut who: Vec<String> = std::iter::once(&mon.by)
            .chain(mon.conflicts.iter().map(|c| &c.1))
            .map(|a| va.who(a))
            .collect();
        who.sort();
        assert_eq!(who, ["person 1", "person 2"]);
        // Set again by someone who saw both: the conflict is gone everywhere.
        let c = changed(&mut a, 1, Role::Agent, &[hours("mon", "10:00-16:00")]);
        apply(&mut b, vec![c]).unwrap();
        let v = CardView::read(&b);
        assert!(!v.opening["mon"].is_conflict());
        assert_eq!(v.opening["mon"].value, "10:00-16:00");
        assert!(va.conflicts().len() == 1 && v.conflicts().is_empty());
    }

    #[test]
    fn choosing_the_shown_value_of_a_conflict_is_a_write_that_conflicts_with_a_concurrent_one() {
        let (mut a, mut b, mut c) = (genesis(), genesis(), genesis());
        let ca = changed(&mut a, 1, Role::Agent, &[hours("mon", "08:00-18:00")]);
        let cb = changed(&mut b, 2, Role::Agent, &[hours("mon", "09:00-17:00")]);
        for d in [&mut a, &mut b, &mut c] {
            apply(d, vec![ca.clone(), cb.clone()]).unwrap();
        }
        let shown = CardView::read(&a).opening["mon"].value.clone();
        // A settles on the value shown while C, having seen the same, writes another.
        let settle = changed(&mut a, 1, Role::Agent, &[hours("mon", &shown)]);
        let other = changed(&mut c, 3, Role::Agent, &[hours("mon", "10:00-14:00")]);
        apply(&mut a, vec![other]).unwrap();
        apply(&mut c, vec![settle]).unwrap();
        let (va, vc) = (CardView::read(&a), CardView::read(&c));
        assert_eq!(va, vc);
        let mon = &va.opening["mon"];
        let mut values: Vec<&str> = std::iter::once(mon.value.as_str())
            .chain(mon.conflicts.iter().map(|x| x.0.as_str()))
            .collect();
        values.sort();
        assert_eq!(values, [shown.as_str(), "10:00-14:00"]);
    }

    #[test]
    fn notes_typed_on_two_phones_merge_character_by_character() {
        let mut base = genesis();
        let c0 = changed(
            &mut base,
            1,
            Role::Agent,
            &[CardEdit::Notes("Back door.\n".into())],
        );
        let mut a = genesis();
        let mut b = genesis();
        apply(&mut a, vec![c0.clone()]).unwrap();
        apply(&mut b, vec![c0]).unwrap();
        let ca = changed(
            &mut a,
            1,
            Role::Agent,
            &[CardEdit::Notes("Ask for Olena.\nBack door.\n".into())],
        );
        let cb = changed(
            &mut b,
            2,
            Role::Agent,
            &[CardEdit::Notes("Back door.\nNot on Mondays.\n".into())],
        );
        apply(&mut a, vec![cb]).unwrap();
        apply(&mut b, vec![ca]).unwrap();
        let notes = CardView::read(&a).notes;
        assert_eq!(notes, CardView::read(&b).notes);
        assert_eq!(notes, "Ask for Olena.\nBack door.\nNot on Mondays.\n");
    }

    #[test]
    fn a_change_touching_a_non_card_field_is_refused() {
        let before = genesis();
        let mut doc = before.clone();
        doc.set_actor(actor(3));
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "credit_limit", 1_000_000_i64)?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            validate(&before, &doc, &actor(3), Role::Agent),
            Err(CardError::NotACardField("credit_limit".into()))
        );
        // A holiday key in the opening hours, a number where text belongs, a rival notes.
        for (key, bad) in [("opening", "holiday"), ("tags", "vip"), ("root", "notes")] {
            let mut doc = before.clone();
            doc.set_actor(actor(3));
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                match key {
                    "root" => {
                        tx.put_object(ROOT, bad, ObjType::Text)?;
                    }
                    _ => {
                        let o = object_in(tx, key);
                        tx.put(&o, bad, 7_i64)?;
                    }
                }
                Ok(())
            })
            .unwrap();
            assert!(
                matches!(
                    validate(&before, &doc, &actor(3), Role::Agent),
                    Err(CardError::NotACardField(_))
                ),
                "{key}/{bad}"
            );
        }
    }

    #[test]
    fn an_agent_cannot_decide_nor_write_another_actors_author_entry() {
        let before = genesis();
        let mut doc = before.clone();
        changed(
            &mut doc,
            1,
            Role::Agent,
            &[CardEdit::Propose {
                field: "address".into(),
                value: "Khreshchatyk 1".into(),
            }],
        );
        let proposed = doc.clone();
        let err = edit(
            &mut doc,
            &actor(1),
            Role::Agent,
            "person 1",
            1,
            &[CardEdit::Decide {
                field: "address".into(),
                accept: true,
            }],
        )
        .unwrap_err();
        assert!(matches!(err, CardError::NotACardField(_)), "{err}");
        assert_eq!(
            doc.get_heads(),
            proposed.get_heads(),
            "the refused edit is undone"
        );
        // A key user decides.
        changed(
            &mut doc,
            9,
            Role::KeyUser,
            &[CardEdit::Decide {
                field: "address".into(),
                accept: true,
            }],
        );
        let v = CardView::read(&doc);
        assert!(v.proposals.is_empty());
        assert_eq!(v.decisions["address"].value, "accepted\tKhreshchatyk 1");
        // Writing someone else's author entry.
        let mut forged = doc.clone();
        forged.set_actor(actor(4));
        forged
            .transact::<_, _, automerge::AutomergeError>(|tx| {
                let a = object_in(tx, "authors");
                tx.put(&a, actor_hex(&actor(9)).as_str(), "key_user\tSomeone else")?;
                Ok(())
            })
            .unwrap();
        assert!(matches!(
            validate(&doc, &forged, &actor(4), Role::Agent),
            Err(CardError::ForeignActor(_))
        ));
    }

    #[test]
    fn chunks_are_checked_before_parsing_and_by_actor() {
        let mut doc = genesis();
        let c = changed(&mut doc, 1, Role::Agent, &[CardEdit::Notes("x".into())]);
        let raw = c.raw_bytes().to_vec();
        assert!(parse_changes(std::slice::from_ref(&raw), &actor(1)).is_ok());
        assert!(matches!(
            parse_changes(std::slice::from_ref(&raw), &actor(2)),
            Err(CardError::ForeignActor(_))
        ));
        let mut compressed = raw.clone();
        compressed[8] = 2;
        assert!(matches!(
            check_chunk(&compressed),
            Err(CardError::Malformed(_))
        ));
        assert!(matches!(
            check_chunk(&genesis().save()),
            Err(CardError::Malformed(_))
        ));
        assert!(matches!(
            check_chunk(&vec![0u8; limits::CHANGE_BYTES + 1]),
            Err(CardError::TooLarge(_))
        ));
        assert!(matches!(
            parse_changes(&[b"garbage and more garbage".to_vec()], &actor(1)),
            Err(CardError::Malformed(_))
        ));
        // A change whose predecessor the receiver lacks.
        let c2 = changed(&mut doc, 1, Role::Agent, &[CardEdit::Notes("xy".into())]);
        let mut other = genesis();
        assert_eq!(apply(&mut other, vec![c2]), Err(CardError::MissingDeps));
        assert_eq!(other.get_heads(), genesis().get_heads());
    }

    #[test]
    fn limits_refuse_growth_past_them() {
        let mut doc = genesis();
        let long = "x".repeat(limits::NOTES_CHARS + 1);
        let err = edit(
            &mut doc,
            &actor(1),
            Role::Agent,
            "a",
            1,
            &[CardEdit::Notes(long)],
        )
        .unwrap_err();
        assert!(matches!(err, CardError::TooLarge(_)), "{err}");
        let tags: Vec<CardEdit> = (0..=limits::TAGS)
            .map(|i| CardEdit::Tag {
                tag: format!("t{i}"),
                on: true,
            })
            .collect();
        assert!(edit(&mut doc, &actor(1), Role::Agent, "a", 1, &tags).is_err());
        assert!(
            edit(
                &mut doc,
                &actor(1),
                Role::Agent,
                "a",
                1,
                &tags[..limits::TAGS]
            )
            .is_ok()
        );
        assert!(matches!(
            edit(
                &mut doc,
                &actor(1),
                Role::Agent,
                "a",
                1,
                &[hours("tue", "25:00-26:00")]
            ),
            Err(CardError::NotACardField(_))
        ));
    }

    #[test]
    fn a_change_is_summarized_by_the_card_paths_it_wrote() {
        let mut doc = genesis();
        let c = changed(
            &mut doc,
            1,
            Role::Agent,
            &[
                hours("mon", "08:00-18:00"),
                CardEdit::Notes("Back door".into()),
                CardEdit::Contact {
                    id: "c1".into(),
                    name: Some("Olena".into()),
                    role: None,
                    phone: Some("+380".into()),
                },
                CardEdit::Tag {
                    tag: "vip".into(),
                    on: true,
                },
                CardEdit::Propose {
                    field: "address".into(),
                    value: "Khreshchatyk 1".into(),
                },
            ],
        );
        assert_eq!(
            summarize(&c),
            [
                "opening/mon",
                "notes",
                "contacts",
                "tags/vip",
                "proposals/address"
            ]
        );
    }

    /// A pull page as an app that predates cards decodes it: `Change` without field 10.
    mod before_cards {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Change {
            #[prost(oneof = "Entity", tags = "1, 9")]
            pub entity: Option<Entity>,
        }
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Entity {
            #[prost(message, tag = "1")]
            Outlet(crate::v1::Outlet),
            #[prost(message, tag = "9")]
            Deleted(crate::v1::Tombstone),
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct PullResponse {
            #[prost(message, repeated, tag = "2")]
            pub changes: Vec<Change>,
            #[prost(bytes = "vec", tag = "3")]
            pub next_cursor: Vec<u8>,
        }
    }

    #[test]
    fn an_app_that_predates_cards_reads_a_page_with_cards_as_changes_without_an_entity() {
        use prost::Message;
        let mut doc = genesis();
        let c = changed(&mut doc, 1, Role::Agent, &[hours("mon", "08:00-18:00")]);
        let page = crate::v1::PullResponse {
            changes: vec![
                crate::v1::Change {
                    entity: Some(crate::v1::change::Entity::OutletCard(
                        crate::v1::OutletCard {
                            outlet_id: 7,
                            payload: crate::v1::CardPayload::CardChanges as i32,
                            automerge: c.raw_bytes().to_vec(),
                        },
                    )),
                },
                crate::v1::Change {
                    entity: Some(crate::v1::change::Entity::Outlet(crate::v1::Outlet {
                        id: 7,
                        name: "Kvitka".into(),
                        ..Default::default()
                    })),
                },
            ],
            next_cursor: vec![1, 2, 3],
            card_actor: vec![1; 16],
            ..Default::default()
        };
        let old = before_cards::PullResponse::decode(page.encode_to_vec().as_slice()).unwrap();
        assert_eq!(old.changes.len(), 2);
        assert_eq!(old.changes[0].entity, None, "skipped, not an error");
        assert!(
            matches!(&old.changes[1].entity, Some(before_cards::Entity::Outlet(o)) if o.name == "Kvitka")
        );
        assert_eq!(old.next_cursor, vec![1, 2, 3]);
    }

    #[test]
    fn hours_parse_ranges_or_closed() {
        assert_eq!(parse_hours(""), Some(vec![]));
        assert_eq!(
            parse_hours("08:00-13:00, 14:00-18:30"),
            Some(vec![(480, 780), (840, 1110)])
        );
        assert_eq!(parse_hours("18:00-08:00"), None);
        assert_eq!(parse_hours("8-18"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn any_order_of_the_same_changes_gives_the_same_heads(
            edits in proptest::collection::vec((0u8..3, 0usize..7, "[a-c]{0,3}"), 1..12),
            seed in 0u64..1000,
        ) {
            // Three replicas edit independently; each receives the others' changes in its
            // own order.
            let mut replicas = [genesis(), genesis(), genesis()];
            let mut all: Vec<Change> = Vec::new();
            for (who, day, text) in &edits {
                let r = &mut replicas[*who as usize];
                let value = if text.is_empty() { String::new() } else { "09:00-18:00".into() };
                if let Some(c) = edit(r, &actor(*who + 1), Role::Agent, "p", 1,
                    &[hours(WEEKDAYS[*day], &value), CardEdit::Notes(text.clone())]).unwrap() {
                    all.push(c);
                }
            }
            let mut views = Vec::new();
            for (i, r) in replicas.iter_mut().enumerate() {
                let mut order = all.clone();
                let k = (seed as usize + i) % order.len().max(1);
                order.rotate_left(k);
                // Out of causal order: apply what can be applied until nothing is left.
                let mut pending = order;
                while !pending.is_empty() {
                    let before = pending.len();
                    pending.retain(|c| apply(r, vec![c.clone()]).is_err());
                    proptest::prop_assert!(pending.len() < before);
                }
                views.push((r.get_heads(), CardView::read(r)));
            }
            proptest::prop_assert_eq!(&views[0], &views[1]);
            proptest::prop_assert_eq!(&views[1], &views[2]);
        }
    }
}
