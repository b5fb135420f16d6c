//! Questionnaires in the back office: the list with a form to create one, and a
//! questionnaire's card to change its name, validity and targeting, and to add, edit,
//! reorder and remove its questions. The store decides whether an edit of the questions
//! rewrites the questionnaire or makes a new version (when it has answers); the card then
//! opens the version that was changed. What is saved reaches the phones with their next pull.
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::auth::Change;
use super::list::list_page;
use super::lists;
use super::{
    Fields, T, WebError, WebResult, WebUser, csrf_field, distributor_field, layout,
    user_distributors,
};
use crate::AppState;
use crate::store::StoreError;
use crate::store::questionnaires::{
    ConditionForm, QUESTION_TYPES, QuestionEdit, QuestionForm, QuestionLine, QuestionnaireForm,
    QuestionnaireHead,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/questionnaires", get(questionnaires).post(create))
        .route("/questionnaires/{id}", get(card))
        .route("/questionnaires/{id}/{action}", post(card_action))
}

/// Territories and positions a questionnaire can target (id, distributor, kind, code, name).
type Unit = (i64, i64, String, String, String);

/// The fields of a questionnaire's name, validity and targeting, filled from `head`.
fn head_fields(t: &T, units: &[Unit], head: Option<&QuestionnaireHead>) -> Markup {
    let targeted = |id: i64| head.is_some_and(|h| h.org_units.iter().any(|u| u.0 == id));
    let channels = head.map(|h| h.channels.join(", ")).unwrap_or_default();
    html! {
        label { (t.s("col.name")) input #questionnaire-name name="name" required maxlength="120" value=[head.map(|h| &h.name)]; }
        label { (t.s("col.valid_from")) input #valid-from type="date" name="valid_from" value=[head.map(|h| &h.valid_from)]; }
        label { (t.s("col.valid_to")) input #valid-to type="date" name="valid_to" value=[head.map(|h| &h.valid_to)]; }
        label { (t.s("questionnaires.targets"))
            select #org-units name="org_unit_id" multiple size="4" {
                @for (id, _, kind, code, name) in units {
                    option value=(id) selected[targeted(*id)] { (t.value("org_kind", kind)) " " (code) " · " (name) }
                }
            }
        }
        label { (t.s("questionnaires.channels")) input #channels name="channels" value=(channels) placeholder=(t.s("questionnaires.channels_hint")); }
        p.hint { (t.s("questionnaires.targets_hint")) }
    }
}

/// The form's name, validity and targeting.
fn head_form(f: &Fields) -> QuestionnaireForm {
    QuestionnaireForm {
        name: f.get("name").to_string(),
        valid_from: f.get("valid_from").to_string(),
        valid_to: f.get("valid_to").to_string(),
        org_unit_ids: f
            .0
            .iter()
            .filter(|(k, _)| k == "org_unit_id")
            .filter_map(|(_, v)| v.parse().ok())
            .collect(),
        channels: f.get("channels").split(',').map(str::to_string).collect(),
    }
}

async fn target_units(state: &AppState, user: &WebUser) -> WebResult<Vec<Unit>> {
    let units = state.store.questionnaire_target_units().await?;
    Ok(user.visible(units, |u| u.1).collect())
}

async fn questionnaires(
    State(state): State<AppState>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> WebResult<Markup> {
    let t = user.t();
    let distributors = user_distributors(&state, &user).await?;
    let units = target_units(&state, &user).await?;
    let extra = html! {
        @if user.can_write() && !distributors.is_empty() {
            details.create #create-questionnaire {
                summary { (t.s("questionnaires.create")) }
                form method="post" action="/questionnaires" {
                    (csrf_field(&user))
                    (distributor_field(&t, &distributors))
                    (head_fields(&t, &units, None))
                    button #save-new-questionnaire type="submit" { (t.s("common.create")) }
                }
            }
        }
    };
    list_page(
        State(state),
        user,
        RawQuery(raw),
        &lists::QUESTIONNAIRES,
        extra,
    )
    .await
}

/// A new questionnaire, without questions yet: its card opens to add them.
async fn create(
    State(state): State<AppState>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let d = f.get("distributor_id").parse().unwrap_or(0);
    user.check_distributor(d)?;
    let saved = state
        .store
        .create_questionnaire_head(d, &head_form(&f))
        .await;
    let id = saved.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/questionnaires/{id}")).into_response())
}

/// The questionnaire `id` if the user may see it.
async fn visible(state: &AppState, user: &WebUser, id: i64) -> WebResult<QuestionnaireHead> {
    let head = state.store.questionnaire_card(id).await?;
    user.found(head, |h| h.distributor_id)
}

/// When a question is asked, in words.
fn condition_text(t: &T, lines: &[QuestionLine], line: &QuestionLine) -> String {
    let r = &line.row;
    let Some(earlier) = r
        .condition_question_id
        .and_then(|c| lines.iter().find(|l| l.row.id == c))
    else {
        return t.s("questionnaires.always");
    };
    let n = earlier.row.position.to_string();
    match r.condition_choice_id {
        None if r.condition_yes != 0 => t.f("questionnaires.when_yes", &[("n", &n)]),
        None => t.f("questionnaires.when_no", &[("n", &n)]),
        Some(c) => {
            let label = earlier
                .choices
                .iter()
                .find(|x| x.0 == c)
                .map(|x| x.1.as_str())
                .unwrap_or("?");
            t.f(
                "questionnaires.when_choice",
                &[("n", &n), ("choice", label)],
            )
        }
    }
}

/// The value of a condition option: `y:Q`, `n:Q` or `c:Q:CHOICE`.
fn condition_value(line: &QuestionLine) -> String {
    let r = &line.row;
    match (r.condition_question_id, r.condition_choice_id) {
        (None, _) => String::new(),
        (Some(q), None) if r.condition_yes != 0 => format!("y:{q}"),
        (Some(q), None) => format!("n:{q}"),
        (Some(q), Some(c)) => format!("c:{q}:{c}"),
    }
}

fn parse_condition(s: &str) -> Option<ConditionForm> {
    let parts: Vec<&str> = s.split(':').collect();
    let id = |i: usize| parts.get(i).and_then(|p| p.parse::<i64>().ok());
    match parts.first()? {
        &"y" | &"n" => Some(ConditionForm::YesNo {
            question_id: id(1)?,
            yes: parts[0] == "y",
        }),
        &"c" => Some(ConditionForm::Choice {
            question_id: id(1)?,
            choice_id: id(2)?,
        }),
        _ => None,
    }
}

/// A question's fields (`suffix` tells the forms on one card apart), filled from `line`;
/// its condition may name the other yes/no and choice questions.
fn question_fields(
    t: &T,
    lines: &[QuestionLine],
    line: Option<&QuestionLine>,
    suffix: &str,
) -> Markup {
    let kind = line
        .map(|l| l.row.question_type.as_str())
        .unwrap_or("yes_no");
    let choices = line
        .map(|l| {
            l.choices
                .iter()
                .map(|c| c.1.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let current = line.map(condition_value).unwrap_or_default();
    let others = lines
        .iter()
        .filter(|l| line.is_none_or(|x| x.row.id != l.row.id));
    html! {
        label { (t.s("col.question")) input id={"q-text" (suffix)} name="text" required maxlength="500" value=[line.map(|l| &l.row.text)]; }
        label { (t.s("col.question_type"))
            select id={"q-type" (suffix)} name="question_type" {
                @for k in QUESTION_TYPES { option value=(k) selected[*k == kind] { (t.value("question_type", k)) } }
            }
        }
        label { input id={"q-required" (suffix)} type="checkbox" name="required" value="1" checked[line.is_some_and(|l| l.row.required != 0)]; " " (t.s("col.required")) }
        label { (t.s("col.choices")) textarea id={"q-choices" (suffix)} name="choices" rows="3" placeholder=(t.s("questionnaires.choices_hint")) { (choices) } }
        label { (t.s("col.condition"))
            select id={"q-condition" (suffix)} name="condition" {
                option value="" { (t.s("questionnaires.always")) }
                @for o in others {
                    @let n = o.row.position.to_string();
                    @let q = o.row.id;
                    @if o.row.question_type == "yes_no" {
                        @let (y, no) = (format!("y:{q}"), format!("n:{q}"));
                        option value=(y) selected[current == y] { (t.f("questionnaires.when_yes", &[("n", &n)])) }
                        option value=(no) selected[current == no] { (t.f("questionnaires.when_no", &[("n", &n)])) }
                    }
                    @for (c, label) in &o.choices {
                        @let v = format!("c:{q}:{c}");
                        option value=(v) selected[current == v] { (t.f("questionnaires.when_choice", &[("n", &n), ("choice", label)])) }
                    }
                }
            }
        }
    }
}

async fn card(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<i64>,
) -> WebResult<Markup> {
    let t = user.t();
    let head = visible(&state, &user, id).await?;
    let lines = state.store.questionnaire_lines(id).await?;
    let versions = state.store.questionnaire_versions(head.family_id).await?;
    let units = target_units(&state, &user).await?;
    let editable = user.can_write() && head.superseded_by.is_none();
    let validity = match (head.valid_from.as_str(), head.valid_to.as_str()) {
        ("", "") => t.s("questionnaires.always_valid"),
        (from, to) => format!("{from} – {to}"),
    };
    let targets = if head.org_units.is_empty() {
        t.s("questionnaires.everyone")
    } else {
        let units: Vec<String> = head
            .org_units
            .iter()
            .map(|u| format!("{} · {}", u.1, u.2))
            .collect();
        units.join(", ")
    };
    let channels = if head.channels.is_empty() {
        t.s("questionnaires.all_channels")
    } else {
        head.channels.join(", ")
    };
    let action = |a: &str| format!("/questionnaires/{id}/{a}");
    let body = html! {
        @if let Some(newer) = head.superseded_by {
            p.notice #superseded { (t.s("questionnaires.superseded_notice")) " " a href={"/questionnaires/" (newer)} { (t.s("questionnaires.newer")) } }
        }
        dl.facts {
            dt { (t.s("col.distributor")) } dd { (head.distributor) }
            dt { (t.s("questionnaires.version")) } dd #version { (head.version) }
            dt { (t.s("questionnaires.answer_sets")) } dd #answer-sets { (head.answer_sets) }
            dt { (t.s("questionnaires.validity")) } dd #validity { (validity) }
            dt { (t.s("questionnaires.targets")) } dd #targets { (targets) }
            dt { (t.s("questionnaires.channels")) } dd #channel-targets { (channels) }
            @if versions.len() > 1 {
                dt { (t.s("questionnaires.versions")) }
                dd #versions { @for (v_id, v, answers) in &versions {
                    a href={"/questionnaires/" (v_id)} { (v) } " (" (answers) ") "
                } }
            }
        }
        @if editable {
            details #edit-head {
                summary { (t.s("questionnaires.edit")) }
                form method="post" action=(action("save")) {
                    (csrf_field(&user))
                    (head_fields(&t, &units, Some(&head)))
                    button #save-questionnaire type="submit" { (t.s("common.save")) }
                }
            }
            @if head.answer_sets > 0 {
                p.hint #versioned-note { (t.s("questionnaires.versioned_note")) }
            }
        }
        h2 { (t.s("questionnaires.questions")) }
        table.list #questions {
            thead { tr { th { "#" } th { (t.s("col.question")) } th { (t.s("col.question_type")) } th { (t.s("col.required")) } th { (t.s("col.condition")) } th { (t.s("col.choices")) } th {} } }
            tbody {
                @if lines.is_empty() { tr { td.empty colspan="7" { (t.s("list.empty")) } } }
                @for l in &lines { tr id={"question-" (l.row.position)} {
                    td { (l.row.position) }
                    td.text { (l.row.text) }
                    td { (t.value("question_type", &l.row.question_type)) }
                    td { (t.s(if l.row.required != 0 { "common.yes" } else { "common.no" })) }
                    td.condition { (condition_text(&t, &lines, l)) }
                    td { (l.choices.iter().map(|c| c.1.as_str()).collect::<Vec<_>>().join(", ")) }
                    td { @if editable {
                        @let suffix = format!("-{}", l.row.position);
                        @for (a, label) in [("up", "questionnaires.move_up"), ("down", "questionnaires.move_down"), ("remove", "questionnaires.remove")] {
                            form.inline method="post" action=(action(a)) {
                                (csrf_field(&user))
                                input type="hidden" name="question_id" value=(l.row.id);
                                button class={"q-" (a)} type="submit" { (t.s(label)) }
                            }
                        }
                        details.edit-question {
                            summary id={"edit-question" (suffix)} { (t.s("questionnaires.edit_question")) }
                            form method="post" action=(action("question")) {
                                (csrf_field(&user))
                                input type="hidden" name="question_id" value=(l.row.id);
                                (question_fields(&t, &lines, Some(l), &suffix))
                                button id={"save-question" (suffix)} type="submit" { (t.s("common.save")) }
                            }
                        }
                    } }
                } }
            }
        }
        @if editable {
            details.create #add-question {
                summary { (t.s("questionnaires.add_question")) }
                form method="post" action=(action("add")) {
                    (csrf_field(&user))
                    (question_fields(&t, &lines, None, ""))
                    button #save-new-question type="submit" { (t.s("common.create")) }
                }
            }
        }
    };
    Ok(layout(&t, &user, &head.name, body))
}

/// The question the form describes.
fn question_form(f: &Fields) -> QuestionForm {
    QuestionForm {
        text: f.get("text").to_string(),
        question_type: f.get("question_type").to_string(),
        required: f.get("required") == "1",
        choices: f.get("choices").lines().map(str::to_string).collect(),
        condition: parse_condition(f.get("condition")),
    }
}

/// The card's actions (`POST /questionnaires/{id}/{action}`): `save` (name, validity,
/// targets), `add`, `question` (edit one), `up`, `down`, `remove`; then the card of the
/// version that was changed (a new one when the questionnaire had answers).
async fn card_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    Change(user, f): Change<Fields>,
) -> WebResult<Response> {
    let head = visible(&state, &user, id).await?;
    let (store, d) = (&state.store, head.distributor_id);
    let question = f.get("question_id").parse().unwrap_or(0);
    let edit = match action.as_str() {
        "save" => None,
        "add" => Some(QuestionEdit::Add(question_form(&f))),
        "question" => Some(QuestionEdit::Save(question, question_form(&f))),
        "up" => Some(QuestionEdit::Move(question, true)),
        "down" => Some(QuestionEdit::Move(question, false)),
        "remove" => Some(QuestionEdit::Remove(question)),
        _ => return Err(WebError::store(&user.t(), StoreError::NotFound)),
    };
    let done = match edit {
        None => store
            .save_questionnaire_head(d, id, &head_form(&f))
            .await
            .map(|_| id),
        Some(edit) => store.edit_questions(d, id, &edit).await,
    };
    let changed = done.map_err(|e| WebError::store(&user.t(), e))?;
    Ok(Redirect::to(&format!("/questionnaires/{changed}")).into_response())
}
