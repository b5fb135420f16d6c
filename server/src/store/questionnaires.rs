//! Questionnaires as key users keep them: create one (name, validity dates, whom it targets),
//! then add, edit, reorder and remove its questions of every type the protocol defines, with
//! required flags, choice lists and conditions ("ask B only when A is yes", or when A's
//! choice is X).
//!
//! Versions: a questionnaire that already has answers is never rewritten. An edit of its
//! questions first copies it into a new version (a new row with `version + 1`, the same
//! `family_id`, the old row's `superseded_by` pointing at it) and changes the copy; the old
//! answers keep pointing at the old version's questions and keep their meaning. One function
//! decides it, [`writable_version`], inside the edit's write transaction. A questionnaire
//! without answers is edited in place. The name, validity and targeting do not change what
//! an answer means and are always changed in place.
//!
//! Every change reaches the phones with their next pull: the change log carries the
//! questionnaire to the scopes it targets (0, the whole distributor, when it targets no
//! territory or position), a tombstone to the scopes it left, and for a new version a
//! tombstone of the old one. Each edit is checked as a whole before it commits: a condition
//! names an earlier question of the same questionnaire that is yes/no (for a yes/no
//! condition) or a choice question with that choice; what fails is refused with its
//! catalogue key and rolls back.
use std::collections::HashMap;

use fieldsync_protocol::dates;
use fieldsync_protocol::v1::EntityKind;

use super::sql::{IntoVal, Val, exec_on, id_on, one_on, rows_on};
use super::world::{ChangeRef, commit_changes};
use super::{Problem, Result, Store, StoreError, WriteTx};

/// The question types a key user can choose, as stored (the protocol's `QuestionType`
/// names). There is no photo type on the wire yet.
pub const QUESTION_TYPES: &[&str] = &[
    "yes_no",
    "number",
    "text",
    "single_choice",
    "multiple_choice",
    "date",
];

/// The longest questionnaire name accepted.
pub const MAX_NAME_CHARS: usize = 120;
/// The longest question text or choice label accepted.
pub const MAX_TEXT_CHARS: usize = 500;

/// Why a questionnaire edit is refused (the catalogue key is [`Refusal::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a questionnaire needs a name of 1 to 120 characters")]
    Name,
    #[error("validity dates are YYYY-MM-DD, the first not after the last")]
    Dates,
    #[error("the distributor has no such territory or position")]
    OrgUnit,
    #[error("a question needs a text of 1 to 500 characters")]
    Text,
    #[error("a question type is yes/no, number, text, single choice, multiple choice or date")]
    Type,
    #[error("a choice question needs at least two different choices of 1 to 500 characters")]
    Choices,
    #[error("a condition must name an earlier question of this questionnaire")]
    ConditionNotEarlier,
    #[error(
        "a condition needs an earlier yes/no question, or a choice of an earlier choice question"
    )]
    ConditionType,
    #[error("a later question is asked only on an answer to this one; change that one first")]
    Depended,
    #[error("a newer version of this questionnaire exists; edit that one")]
    Superseded,
}

impl Refusal {
    /// The catalogue key of the message.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Name => "questionnaires.bad_name",
            Refusal::Dates => "questionnaires.bad_dates",
            Refusal::OrgUnit => "questionnaires.unknown_org_unit",
            Refusal::Text => "questionnaires.bad_text",
            Refusal::Type => "questionnaires.bad_type",
            Refusal::Choices => "questionnaires.bad_choices",
            Refusal::ConditionNotEarlier => "questionnaires.condition_not_earlier",
            Refusal::ConditionType => "questionnaires.condition_type",
            Refusal::Depended => "questionnaires.depended_on",
            Refusal::Superseded => "questionnaires.superseded",
        }
    }
}

fn refused<T>(r: Refusal) -> Result<T> {
    Err(StoreError::Refused(Problem::Questionnaire(r)))
}

/// A questionnaire as its card shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionnaireHead {
    pub id: i64,
    pub distributor_id: i64,
    pub distributor: String,
    pub name: String,
    pub version: i64,
    pub family_id: i64,
    pub superseded_by: Option<i64>,
    pub valid_from: String,
    pub valid_to: String,
    /// Filled questionnaires (answer sets) of this version.
    pub answer_sets: i64,
    /// Targeted territories and positions (id, code, name); none: every phone.
    pub org_units: Vec<(i64, String, String)>,
    /// Targeted outlet channels; none: every outlet.
    pub channels: Vec<String>,
}

/// One question as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionRow {
    pub id: i64,
    pub position: i64,
    pub text: String,
    pub question_type: String,
    pub required: i64,
    pub condition_question_id: Option<i64>,
    pub condition_yes: i64,
    pub condition_choice_id: Option<i64>,
}

/// A question of a questionnaire's card, with its choices (id, label) in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionLine {
    pub row: QuestionRow,
    pub choices: Vec<(i64, String)>,
}

/// What a key user enters for a questionnaire.
#[derive(Debug, Clone, Default)]
pub struct QuestionnaireForm {
    pub name: String,
    /// "YYYY-MM-DD" or empty (open-ended).
    pub valid_from: String,
    pub valid_to: String,
    /// Territories and positions of the distributor; empty: every phone.
    pub org_unit_ids: Vec<i64>,
    /// Outlet channels; empty: every outlet.
    pub channels: Vec<String>,
}

/// When a question is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionForm {
    /// Only when the yes/no question `question_id` is answered `yes`.
    YesNo { question_id: i64, yes: bool },
    /// Only when the choice question `question_id` is answered with `choice_id`.
    Choice { question_id: i64, choice_id: i64 },
}

/// What a key user enters for a question.
#[derive(Debug, Clone)]
pub struct QuestionForm {
    pub text: String,
    pub question_type: String,
    pub required: bool,
    /// Labels in order, for choice questions (ignored for the others).
    pub choices: Vec<String>,
    pub condition: Option<ConditionForm>,
}

/// One change to a questionnaire's questions.
#[derive(Debug, Clone)]
pub enum QuestionEdit {
    Add(QuestionForm),
    Save(i64, QuestionForm),
    /// Moves a question one place up (`true`) or down.
    Move(i64, bool),
    Remove(i64),
}

impl QuestionnaireForm {
    /// The trimmed form, or the problem with it.
    fn checked(&self) -> Result<QuestionnaireForm> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return refused(Refusal::Name);
        }
        let (from, to) = (self.valid_from.trim(), self.valid_to.trim());
        let date_ok = |d: &str| d.is_empty() || dates::is_date(d);
        if !date_ok(from) || !date_ok(to) || (!from.is_empty() && !to.is_empty() && from > to) {
            return refused(Refusal::Dates);
        }
        let mut channels: Vec<String> = self
            .channels
            .iter()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        channels.sort();
        channels.dedup();
        let mut org_unit_ids = self.org_unit_ids.clone();
        org_unit_ids.sort();
        org_unit_ids.dedup();
        Ok(QuestionnaireForm {
            name: name.to_string(),
            valid_from: from.to_string(),
            valid_to: to.to_string(),
            org_unit_ids,
            channels,
        })
    }
}

impl QuestionForm {
    fn is_choice(t: &str) -> bool {
        t == "single_choice" || t == "multiple_choice"
    }

    /// The trimmed form, or the problem with it (its condition is checked with the whole
    /// questionnaire).
    fn checked(&self) -> Result<QuestionForm> {
        let text = self.text.trim();
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            return refused(Refusal::Text);
        }
        if !QUESTION_TYPES.contains(&self.question_type.as_str()) {
            return refused(Refusal::Type);
        }
        let choices: Vec<String> = if Self::is_choice(&self.question_type) {
            let labels: Vec<String> = self
                .choices
                .iter()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            let mut unique = labels.clone();
            unique.sort();
            unique.dedup();
            if unique.len() < 2
                || unique.len() != labels.len()
                || labels.iter().any(|l| l.chars().count() > MAX_TEXT_CHARS)
            {
                return refused(Refusal::Choices);
            }
            labels
        } else {
            Vec::new()
        };
        Ok(QuestionForm {
            text: text.to_string(),
            question_type: self.question_type.clone(),
            required: self.required,
            choices,
            condition: self.condition,
        })
    }
}

impl Store {
    /// A questionnaire's card, if it exists.
    pub async fn questionnaire_card(&self, id: i64) -> Result<Option<QuestionnaireHead>> {
        let row: Option<(
            i64,
            String,
            String,
            i64,
            i64,
            Option<i64>,
            String,
            String,
            i64,
        )> = self
            .opt(
                "SELECT q.distributor_id, d.code, q.name, q.version, COALESCE(q.family_id, q.id),
                        q.superseded_by, q.valid_from, q.valid_to,
                        (SELECT COUNT(DISTINCT a.answers_id) FROM questionnaire_answers a
                         WHERE a.questionnaire_id = q.id)
                 FROM questionnaires q JOIN distributors d ON d.id = q.distributor_id
                 WHERE q.id = $1",
                &[id.into_val()],
            )
            .await?;
        let Some((
            distributor_id,
            distributor,
            name,
            version,
            family_id,
            superseded_by,
            valid_from,
            valid_to,
            answer_sets,
        )) = row
        else {
            return Ok(None);
        };
        let org_units = self
            .all_by(
                "SELECT u.id, u.code, u.name FROM questionnaire_org_units t
                 JOIN org_units u ON u.id = t.org_unit_id WHERE t.questionnaire_id = $1 ORDER BY u.code",
                id,
            )
            .await?;
        let channels: Vec<(String,)> = self
            .all_by(
                "SELECT channel FROM questionnaire_channels WHERE questionnaire_id = $1 ORDER BY channel",
                id,
            )
            .await?;
        Ok(Some(QuestionnaireHead {
            id,
            distributor_id,
            distributor,
            name,
            version,
            family_id,
            superseded_by,
            valid_from,
            valid_to,
            answer_sets,
            org_units,
            channels: channels.into_iter().map(|c| c.0).collect(),
        }))
    }

    /// A questionnaire's questions in order, with their choices.
    pub async fn questionnaire_lines(&self, id: i64) -> Result<Vec<QuestionLine>> {
        let mut conn = self.pool().acquire().await?;
        lines_on(&mut conn, id).await
    }

    /// The versions of a questionnaire's family (id, version, answer sets), newest first.
    pub async fn questionnaire_versions(&self, family_id: i64) -> Result<Vec<(i64, i64, i64)>> {
        self.all_by(
            "SELECT q.id, q.version,
                    (SELECT COUNT(DISTINCT a.answers_id) FROM questionnaire_answers a
                     WHERE a.questionnaire_id = q.id)
             FROM questionnaires q WHERE COALESCE(q.family_id, q.id) = $1 ORDER BY q.version DESC",
            family_id,
        )
        .await
    }

    /// The territories and positions questionnaires can target (id, distributor, kind, code,
    /// name), by code.
    pub async fn questionnaire_target_units(
        &self,
    ) -> Result<Vec<(i64, i64, String, String, String)>> {
        self.all(
            "SELECT id, distributor_id, kind, code, name FROM org_units
             WHERE kind IN ('territory', 'position') ORDER BY code",
        )
        .await
    }

    /// Creates a questionnaire of `distributor_id` without questions; returns its id.
    pub async fn create_questionnaire_head(
        &self,
        distributor_id: i64,
        form: &QuestionnaireForm,
    ) -> Result<i64> {
        let form = form.checked()?;
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, distributor_id).await?;
        let id = id_on(
            &mut tx,
            "INSERT INTO questionnaires (distributor_id, name, active, version, valid_from, valid_to)
             VALUES ($1, $2, 1, 1, $3, $4) RETURNING id",
            &[
                Val::I(distributor_id),
                Val::S(form.name.clone()),
                Val::S(form.valid_from.clone()),
                Val::S(form.valid_to.clone()),
            ],
        )
        .await?;
        exec_on(
            &mut tx,
            "UPDATE questionnaires SET family_id = id WHERE id = $1",
            &[Val::I(id)],
        )
        .await?;
        let changes = set_targets(&mut tx, distributor_id, id, &form).await?;
        commit_changes(tx, distributor_id, &changes).await?;
        Ok(id)
    }

    /// Changes the name, validity and targeting of the current version `id` of a
    /// questionnaire of `distributor_id`, in place: none of them changes what an answer means.
    /// Phones it no longer targets get a tombstone.
    pub async fn save_questionnaire_head(
        &self,
        distributor_id: i64,
        id: i64,
        form: &QuestionnaireForm,
    ) -> Result<()> {
        let form = form.checked()?;
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, distributor_id).await?;
        current(&mut tx, distributor_id, id).await?;
        exec_on(
            &mut tx,
            "UPDATE questionnaires SET name = $2, valid_from = $3, valid_to = $4 WHERE id = $1",
            &[
                Val::I(id),
                Val::S(form.name.clone()),
                Val::S(form.valid_from.clone()),
                Val::S(form.valid_to.clone()),
            ],
        )
        .await?;
        let changes = set_targets(&mut tx, distributor_id, id, &form).await?;
        commit_changes(tx, distributor_id, &changes).await
    }

    /// Applies one change to the questions of the current version `id` of a questionnaire of
    /// `distributor_id`, in a new version when `id` has answers ([`writable_version`]), and
    /// checks the result as a whole. Returns the id of the version that was changed.
    pub async fn edit_questions(
        &self,
        distributor_id: i64,
        id: i64,
        edit: &QuestionEdit,
    ) -> Result<i64> {
        let edit = match edit {
            QuestionEdit::Add(f) => QuestionEdit::Add(f.checked()?),
            QuestionEdit::Save(q, f) => QuestionEdit::Save(*q, f.checked()?),
            other => other.clone(),
        };
        let mut tx = self.begin_write().await?;
        self.serialise_distributor(&mut tx, distributor_id).await?;
        current(&mut tx, distributor_id, id).await?;
        let before = lines_on(&mut tx, id).await?;
        // The questions and choices the edit names must be this questionnaire's.
        let question_of = |q: i64| before.iter().any(|l| l.row.id == q);
        match &edit {
            QuestionEdit::Save(q, _) | QuestionEdit::Move(q, _) | QuestionEdit::Remove(q)
                if !question_of(*q) =>
            {
                return Err(StoreError::NotFound);
            }
            _ => {}
        }
        let version = writable_version(&mut tx, id).await?;
        let q = |old: i64| version.questions.get(&old).copied().unwrap_or(0);
        let c = |old: i64| version.choices.get(&old).copied().unwrap_or(0);
        let condition = |f: &QuestionForm| {
            f.condition.map(|cond| match cond {
                ConditionForm::YesNo { question_id, yes } => ConditionForm::YesNo {
                    question_id: q(question_id),
                    yes,
                },
                ConditionForm::Choice {
                    question_id,
                    choice_id,
                } => ConditionForm::Choice {
                    question_id: q(question_id),
                    choice_id: c(choice_id),
                },
            })
        };
        let target = version.id;
        match &edit {
            QuestionEdit::Add(f) => {
                let (last,): (Option<i64>,) = one_on(
                    &mut tx,
                    "SELECT MAX(position) FROM questions WHERE questionnaire_id = $1",
                    &[Val::I(target)],
                )
                .await?;
                let position = last.unwrap_or(0) + 1;
                let question = id_on(
                    &mut tx,
                    "INSERT INTO questions (questionnaire_id, position, text, question_type, required)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[
                        Val::I(target),
                        Val::I(position),
                        Val::S(f.text.clone()),
                        Val::S(f.question_type.clone()),
                        f.required.into_val(),
                    ],
                )
                .await?;
                save_question(&mut tx, question, f, condition(f)).await?;
            }
            QuestionEdit::Save(old, f) => save_question(&mut tx, q(*old), f, condition(f)).await?,
            QuestionEdit::Move(old, up) => {
                let (position,): (i64,) = one_on(
                    &mut tx,
                    "SELECT position FROM questions WHERE id = $1",
                    &[Val::I(q(*old))],
                )
                .await?;
                let other = if *up { position - 1 } else { position + 1 };
                // Swaps the two places in one statement; nothing when there is no neighbour.
                exec_on(
                    &mut tx,
                    "UPDATE questions SET position = CASE WHEN position = $2 THEN $3 ELSE $2 END
                     WHERE questionnaire_id = $1 AND position IN ($2, $3)
                       AND (SELECT COUNT(*) FROM questions n WHERE n.questionnaire_id = $1 AND n.position = $3) = 1",
                    &[Val::I(target), Val::I(position), Val::I(other)],
                )
                .await?;
            }
            QuestionEdit::Remove(old) => {
                let question = q(*old);
                let (dependants,): (i64,) = one_on(
                    &mut tx,
                    "SELECT COUNT(*) FROM questions WHERE condition_question_id = $1",
                    &[Val::I(question)],
                )
                .await?;
                if dependants > 0 {
                    return refused(Refusal::Depended);
                }
                let (position,): (i64,) = one_on(
                    &mut tx,
                    "SELECT position FROM questions WHERE id = $1",
                    &[Val::I(question)],
                )
                .await?;
                exec_on(
                    &mut tx,
                    "DELETE FROM question_choices WHERE question_id = $1",
                    &[Val::I(question)],
                )
                .await?;
                exec_on(
                    &mut tx,
                    "DELETE FROM questions WHERE id = $1",
                    &[Val::I(question)],
                )
                .await?;
                exec_on(
                    &mut tx,
                    "UPDATE questions SET position = position - 1 WHERE questionnaire_id = $1 AND position > $2",
                    &[Val::I(target), Val::I(position)],
                )
                .await?;
            }
        }
        let after = lines_on(&mut tx, target).await?;
        if let Err(r) = check_conditions(&after) {
            return refused(r);
        }
        let scopes = scopes(&mut tx, target).await?;
        let mut changes: Vec<ChangeRef> = Vec::new();
        if target != id {
            changes.extend(
                scopes
                    .iter()
                    .map(|s| ChangeRef::delete(EntityKind::Questionnaire, id, *s)),
            );
        }
        changes.extend(
            scopes
                .iter()
                .map(|s| ChangeRef::upsert(EntityKind::Questionnaire, target, *s)),
        );
        commit_changes(tx, distributor_id, &changes).await?;
        Ok(target)
    }
}

/// The version an edit of questionnaire `id`'s questions changes, with the ids of its
/// questions and choices by those of `id`: `id` itself while it has no answers; otherwise a
/// new version copied from it, which supersedes it (so its answers keep the questions they
/// were given for). The one place that decides whether an edit rewrites or versions; it runs
/// in the edit's transaction, after the distributor's master-data writers were serialised.
async fn writable_version(tx: &mut WriteTx, id: i64) -> Result<Version> {
    let (answered,): (i64,) = one_on(
        tx,
        "SELECT COUNT(*) FROM questionnaire_answers WHERE questionnaire_id = $1",
        &[Val::I(id)],
    )
    .await?;
    let lines = lines_on(tx, id).await?;
    if answered == 0 {
        return Ok(Version {
            id,
            questions: lines.iter().map(|l| (l.row.id, l.row.id)).collect(),
            choices: lines
                .iter()
                .flat_map(|l| l.choices.iter().map(|c| (c.0, c.0)))
                .collect(),
        });
    }
    let new = id_on(
        tx,
        "INSERT INTO questionnaires (distributor_id, name, active, family_id, version, valid_from, valid_to)
         SELECT distributor_id, name, active, COALESCE(family_id, id), version + 1, valid_from, valid_to
         FROM questionnaires WHERE id = $1 RETURNING id",
        &[Val::I(id)],
    )
    .await?;
    // Only one edit supersedes a version: a concurrent one finds it taken and is refused.
    let taken = exec_on(
        tx,
        "UPDATE questionnaires SET superseded_by = $2 WHERE id = $1 AND superseded_by IS NULL",
        &[Val::I(id), Val::I(new)],
    )
    .await?;
    if taken == 0 {
        return refused(Refusal::Superseded);
    }
    exec_on(
        tx,
        "INSERT INTO questionnaire_org_units (questionnaire_id, org_unit_id)
         SELECT $2, org_unit_id FROM questionnaire_org_units WHERE questionnaire_id = $1",
        &[Val::I(id), Val::I(new)],
    )
    .await?;
    exec_on(
        tx,
        "INSERT INTO questionnaire_channels (questionnaire_id, channel)
         SELECT $2, channel FROM questionnaire_channels WHERE questionnaire_id = $1",
        &[Val::I(id), Val::I(new)],
    )
    .await?;
    let mut version = Version {
        id: new,
        questions: HashMap::new(),
        choices: HashMap::new(),
    };
    for l in &lines {
        let r = &l.row;
        let question = id_on(
            tx,
            "INSERT INTO questions (questionnaire_id, position, text, question_type, required, condition_yes)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                Val::I(new),
                Val::I(r.position),
                Val::S(r.text.clone()),
                Val::S(r.question_type.clone()),
                Val::I(r.required),
                Val::I(r.condition_yes),
            ],
        )
        .await?;
        version.questions.insert(r.id, question);
        for (position, (choice, label)) in (1..).zip(&l.choices) {
            let copy = id_on(
                tx,
                "INSERT INTO question_choices (question_id, position, label) VALUES ($1, $2, $3) RETURNING id",
                &[Val::I(question), Val::I(position), Val::S(label.clone())],
            )
            .await?;
            version.choices.insert(*choice, copy);
        }
    }
    // Conditions last: they name questions and choices of the copy.
    for l in &lines {
        if let Some(cq) = l.row.condition_question_id {
            let choice = l
                .row
                .condition_choice_id
                .map(|c| version.choices.get(&c).copied().unwrap_or(0));
            exec_on(
                tx,
                "UPDATE questions SET condition_question_id = $2, condition_choice_id = $3 WHERE id = $1",
                &[
                    Val::I(version.questions[&l.row.id]),
                    Val::N(version.questions.get(&cq).copied()),
                    Val::N(choice.filter(|c| *c != 0)),
                ],
            )
            .await?;
        }
    }
    Ok(version)
}

/// The version an edit changes, and its question and choice ids by the edited version's.
struct Version {
    id: i64,
    questions: HashMap<i64, i64>,
    choices: HashMap<i64, i64>,
}

/// Refuses anything but the current (not superseded) version `id` of `distributor_id`, and
/// claims it for the edit: on PostgreSQL a row lock (`FOR UPDATE`, which waits for every
/// push that checked answers against it to commit, so the edit then counts their answers);
/// on both backends a new revision, so a push that read the questionnaire before the edit
/// reads it again under its write lock (see `ingest::picture`).
async fn current(tx: &mut WriteTx, distributor_id: i64, id: i64) -> Result<()> {
    let sql = if super::sql::is_sqlite(tx) {
        "SELECT superseded_by FROM questionnaires WHERE id = $1 AND distributor_id = $2"
    } else {
        "SELECT superseded_by FROM questionnaires WHERE id = $1 AND distributor_id = $2 FOR UPDATE"
    };
    let found: Vec<(Option<i64>,)> =
        rows_on(tx, sql, &[Val::I(id), Val::I(distributor_id)]).await?;
    match found.first() {
        None => return Err(StoreError::NotFound),
        Some((Some(_),)) => return refused(Refusal::Superseded),
        Some((None,)) => {}
    }
    exec_on(
        tx,
        "UPDATE questionnaires SET revision = revision + 1 WHERE id = $1",
        &[Val::I(id)],
    )
    .await?;
    Ok(())
}

/// The questions of questionnaire `id` in order, with their choices.
async fn lines_on(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Vec<QuestionLine>> {
    type Row = (i64, i64, String, String, i64, Option<i64>, i64, Option<i64>);
    let rows: Vec<Row> = rows_on(
        conn,
        "SELECT id, position, text, question_type, required, condition_question_id, condition_yes,
                condition_choice_id
         FROM questions WHERE questionnaire_id = $1 ORDER BY position, id",
        &[Val::I(id)],
    )
    .await?;
    let choices: Vec<(i64, i64, String)> = rows_on(
        conn,
        "SELECT c.question_id, c.id, c.label FROM question_choices c JOIN questions q ON q.id = c.question_id
         WHERE q.questionnaire_id = $1 ORDER BY c.question_id, c.position, c.id",
        &[Val::I(id)],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, position, text, question_type, required, cq, cy, cc)| QuestionRow {
                id,
                position,
                text,
                question_type,
                required,
                condition_question_id: cq,
                condition_yes: cy,
                condition_choice_id: cc,
            },
        )
        .map(|row| QuestionLine {
            choices: choices
                .iter()
                .filter(|c| c.0 == row.id)
                .map(|c| (c.1, c.2.clone()))
                .collect(),
            row,
        })
        .collect())
}

/// Writes a checked question's text, type, flags, choices and condition. Choices keep their
/// ids while their label stays (so conditions on them hold); the others are replaced.
async fn save_question(
    tx: &mut WriteTx,
    question: i64,
    f: &QuestionForm,
    condition: Option<ConditionForm>,
) -> Result<()> {
    let (cond_q, cond_yes, cond_choice) = match condition {
        None => (None, 1, None),
        Some(ConditionForm::YesNo { question_id, yes }) => (Some(question_id), yes as i64, None),
        Some(ConditionForm::Choice {
            question_id,
            choice_id,
        }) => (Some(question_id), 1, Some(choice_id)),
    };
    exec_on(
        tx,
        "UPDATE questions SET text = $2, question_type = $3, required = $4,
                condition_question_id = $5, condition_yes = $6, condition_choice_id = $7
         WHERE id = $1",
        &[
            Val::I(question),
            Val::S(f.text.clone()),
            Val::S(f.question_type.clone()),
            f.required.into_val(),
            Val::N(cond_q),
            Val::I(cond_yes),
            Val::N(cond_choice),
        ],
    )
    .await?;
    let stored: Vec<(i64, String)> = rows_on(
        tx,
        "SELECT id, label FROM question_choices WHERE question_id = $1",
        &[Val::I(question)],
    )
    .await?;
    for (id, label) in &stored {
        if !f.choices.contains(label) {
            exec_on(
                tx,
                "DELETE FROM question_choices WHERE id = $1",
                &[Val::I(*id)],
            )
            .await?;
        }
    }
    for (position, label) in (1..).zip(&f.choices) {
        match stored.iter().find(|(_, l)| l == label) {
            Some((id, _)) => {
                exec_on(
                    tx,
                    "UPDATE question_choices SET position = $2 WHERE id = $1",
                    &[Val::I(*id), Val::I(position)],
                )
                .await?;
            }
            None => {
                exec_on(
                    tx,
                    "INSERT INTO question_choices (question_id, position, label) VALUES ($1, $2, $3)",
                    &[Val::I(question), Val::I(position), Val::S(label.clone())],
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// Whether every condition of a questionnaire's questions (in order) names an earlier
/// question of it that fits: a yes/no one for a yes/no condition, a choice question that has
/// the choice for a choice condition. Earlier-only also means no cycles.
pub fn check_conditions(lines: &[QuestionLine]) -> std::result::Result<(), Refusal> {
    for (n, line) in lines.iter().enumerate() {
        let r = &line.row;
        let Some(cq) = r.condition_question_id else {
            continue;
        };
        let Some(earlier) = lines[..n].iter().find(|l| l.row.id == cq) else {
            return Err(Refusal::ConditionNotEarlier);
        };
        let fits = match (earlier.row.question_type.as_str(), r.condition_choice_id) {
            ("yes_no", None) => true,
            ("single_choice" | "multiple_choice", Some(choice)) => {
                earlier.choices.iter().any(|c| c.0 == choice)
            }
            _ => false,
        };
        if !fits {
            return Err(Refusal::ConditionType);
        }
    }
    Ok(())
}

/// The change-log scopes questionnaire `id` reaches: its territories and positions, or 0
/// (every phone of the distributor) when it targets none.
async fn scopes(tx: &mut WriteTx, id: i64) -> Result<Vec<i64>> {
    let units: Vec<(i64,)> = rows_on(
        tx,
        "SELECT org_unit_id FROM questionnaire_org_units WHERE questionnaire_id = $1 ORDER BY org_unit_id",
        &[Val::I(id)],
    )
    .await?;
    Ok(if units.is_empty() {
        vec![0]
    } else {
        units.into_iter().map(|u| u.0).collect()
    })
}

/// Replaces the targets of questionnaire `id` with the form's (its org units must be
/// territories or positions of `distributor_id`); returns the change-log entries: tombstones
/// for the scopes it left first, then the questionnaire for every scope it reaches (so a
/// phone in two of them ends with it).
async fn set_targets(
    tx: &mut WriteTx,
    distributor_id: i64,
    id: i64,
    form: &QuestionnaireForm,
) -> Result<Vec<ChangeRef>> {
    for unit in &form.org_unit_ids {
        let (ok,): (i64,) = one_on(
            tx,
            "SELECT COUNT(*) FROM org_units WHERE id = $1 AND distributor_id = $2
             AND kind IN ('territory', 'position')",
            &[Val::I(*unit), Val::I(distributor_id)],
        )
        .await?;
        if ok == 0 {
            return refused(Refusal::OrgUnit);
        }
    }
    let before = scopes(tx, id).await?;
    exec_on(
        tx,
        "DELETE FROM questionnaire_org_units WHERE questionnaire_id = $1",
        &[Val::I(id)],
    )
    .await?;
    exec_on(
        tx,
        "DELETE FROM questionnaire_channels WHERE questionnaire_id = $1",
        &[Val::I(id)],
    )
    .await?;
    for unit in &form.org_unit_ids {
        exec_on(
            tx,
            "INSERT INTO questionnaire_org_units (questionnaire_id, org_unit_id) VALUES ($1, $2)",
            &[Val::I(id), Val::I(*unit)],
        )
        .await?;
    }
    for channel in &form.channels {
        exec_on(
            tx,
            "INSERT INTO questionnaire_channels (questionnaire_id, channel) VALUES ($1, $2)",
            &[Val::I(id), Val::S(channel.clone())],
        )
        .await?;
    }
    let after = scopes(tx, id).await?;
    let mut changes: Vec<ChangeRef> = before
        .iter()
        .filter(|s| !after.contains(s))
        .map(|s| ChangeRef::delete(EntityKind::Questionnaire, id, *s))
        .collect();
    changes.extend(
        after
            .iter()
            .map(|s| ChangeRef::upsert(EntityKind::Questionnaire, id, *s)),
    );
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        id: i64,
        kind: &str,
        choices: &[i64],
        condition: Option<(i64, Option<i64>)>,
    ) -> QuestionLine {
        QuestionLine {
            row: QuestionRow {
                id,
                position: id,
                text: format!("q{id}"),
                question_type: kind.into(),
                required: 0,
                condition_question_id: condition.map(|c| c.0),
                condition_yes: 1,
                condition_choice_id: condition.and_then(|c| c.1),
            },
            choices: choices.iter().map(|c| (*c, format!("c{c}"))).collect(),
        }
    }

    #[test]
    fn conditions_name_an_earlier_question_of_a_fitting_type() {
        let yes = line(1, "yes_no", &[], None);
        let pick = line(2, "single_choice", &[21, 22], None);
        let text = line(3, "text", &[], None);
        let ok = [
            yes.clone(),
            pick.clone(),
            line(4, "number", &[], Some((1, None))),
            line(5, "text", &[], Some((2, Some(22)))),
        ];
        assert_eq!(check_conditions(&ok), Ok(()));
        let later = [line(4, "number", &[], Some((1, None))), yes.clone()];
        assert_eq!(check_conditions(&later), Err(Refusal::ConditionNotEarlier));
        let itself = [line(4, "yes_no", &[], Some((4, None)))];
        assert_eq!(check_conditions(&itself), Err(Refusal::ConditionNotEarlier));
        let on_text = [text, line(4, "number", &[], Some((3, None)))];
        assert_eq!(check_conditions(&on_text), Err(Refusal::ConditionType));
        let foreign_choice = [pick.clone(), line(4, "number", &[], Some((2, Some(99))))];
        assert_eq!(
            check_conditions(&foreign_choice),
            Err(Refusal::ConditionType)
        );
        let choice_on_yes = [yes, line(4, "number", &[], Some((1, Some(21))))];
        assert_eq!(
            check_conditions(&choice_on_yes),
            Err(Refusal::ConditionType)
        );
    }
}
