//! The shared card on the back office's outlet page: what agents and key users entered, each
//! conflicting field marked with the other values and who entered them, the history of
//! changes, the key user's edit form, and the agents' proposals to accept or reject.
use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use fieldsync_protocol::cards::{CardEdit, CardError, Field, Hours, WEEKDAYS};
use maud::{Markup, html};
use serde::Deserialize;

use super::i18n::T;
use super::{Change, WebError, WebResult, WebUser, csrf_field, fmt_time};
use crate::AppState;
use crate::store::outlet_cards::{CardPage, KeyUserEditError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/outlets/{id}/card", post(save_card))
        .route("/outlets/{id}/card/decide", post(decide))
}

/// The name behind an actor: as the server knows it, else as the card says.
fn who(page: &CardPage, actor: &str) -> String {
    page.names
        .get(actor)
        .cloned()
        .unwrap_or_else(|| page.view.who(actor))
}

fn conflict(t: &T, page: &CardPage, f: &Field) -> Markup {
    if !f.is_conflict() {
        return html! {};
    }
    let others: Vec<String> = f
        .conflicts
        .iter()
        .map(|(v, a)| t.f("card.value_by", &[("value", v), ("name", &who(page, a))]))
        .collect();
    html! {
        div.conflict { (t.f("card.conflict", &[("others", &others.join(", ")), ("shown", &who(page, &f.by))])) }
    }
}

fn hours(t: &T, f: Option<&Field>) -> String {
    match f {
        None => String::new(),
        Some(f) if f.value.is_empty() => t.s("card.closed").to_string(),
        Some(f) => f.value.clone(),
    }
}

/// The card's section of the outlet page.
pub fn section(t: &T, user: &WebUser, outlet_id: i64, page: &CardPage) -> Markup {
    let v = &page.view;
    let conflicts = v.conflicts().len();
    let editable = user.can_write();
    let field_name = |f: &str| t.s(&format!("card.field.{f}")).to_string();
    html! {
        h2 #card { (t.s("card.title")) }
        @if conflicts > 0 {
            p.warn #card-conflicts { (t.f("card.conflicts", &[("count", &conflicts.to_string())])) }
        }
        h3 { (t.s("card.contacts")) }
        table.list #card-contacts {
            thead { tr { th { (t.s("card.contact_name")) } th { (t.s("card.contact_role")) } th { (t.s("card.contact_phone")) } } }
            tbody {
                @for c in &v.contacts { tr {
                    td { (c.name.value) (conflict(t, page, &c.name)) }
                    td { (c.role.value) (conflict(t, page, &c.role)) }
                    td { (c.phone.value) (conflict(t, page, &c.phone)) }
                } }
            }
        }
        h3 { (t.s("card.hours")) }
        table.list #card-hours {
            thead { tr { th {} th { (t.s("card.opening")) } th { (t.s("card.delivery")) } } }
            tbody {
                @for day in WEEKDAYS { tr id={"card-hours-" (day)} {
                    th { (t.s(&format!("day.{day}"))) }
                    td { (hours(t, v.opening.get(day))) @if let Some(f) = v.opening.get(day) { (conflict(t, page, f)) } }
                    td { (hours(t, v.delivery.get(day))) @if let Some(f) = v.delivery.get(day) { (conflict(t, page, f)) } }
                } }
            }
        }
        h3 { (t.s("card.notes")) }
        p.notes #card-notes { (v.notes) }
        @if !v.tags.is_empty() {
            p #card-tags { @for tag in &v.tags { span.badge { (tag) } " " } }
        }
        @if !v.proposals.is_empty() || !v.decisions.is_empty() {
            h3 { (t.s("card.proposals")) }
            table.list #card-proposals {
                tbody {
                    @for (field, f) in &v.proposals { tr id={"proposal-" (field)} {
                        td { (field_name(field)) }
                        td { (f.value) (conflict(t, page, f)) }
                        td { (who(page, &f.by)) }
                        td { @if editable {
                            form.inline method="post" action={"/outlets/" (outlet_id) "/card/decide"} {
                                (csrf_field(user))
                                input type="hidden" name="field" value=(field);
                                button.accept name="accept" value="1" type="submit" { (t.s("card.accept")) }
                                " "
                                button.reject name="accept" value="0" type="submit" { (t.s("card.reject")) }
                            }
                        } }
                    } }
                    @for (field, f) in &v.decisions {
                        @let (verdict, value) = f.value.split_once('\t').unwrap_or(("", &f.value));
                        tr id={"decision-" (field)} {
                            td { (field_name(field)) }
                            td { (value) }
                            td { (who(page, &f.by)) }
                            td { span.badge { (t.s(if verdict == "accepted" { "card.accepted" } else { "card.rejected" })) } }
                        }
                    }
                }
            }
        }
        @if editable {
            details #card-edit {
                summary { (t.s("card.edit")) }
                form method="post" action={"/outlets/" (outlet_id) "/card"} {
                    (csrf_field(user))
                    table.list {
                        thead { tr { th {} th { (t.s("card.opening")) } th { (t.s("card.delivery")) } } }
                        tbody { @for day in WEEKDAYS { tr {
                            th { (t.s(&format!("day.{day}"))) }
                            td { input id={"open-" (day)} name={"open_" (day)} value=(v.opening.get(day).map(|f| f.value.clone()).unwrap_or_default()); }
                            td { input id={"delivery-" (day)} name={"delivery_" (day)} value=(v.delivery.get(day).map(|f| f.value.clone()).unwrap_or_default()); }
                        } } }
                    }
                    p.muted { (t.s("card.hours_hint")) }
                    label { (t.s("card.notes")) textarea #notes-input name="notes" rows="5" { (v.notes) } }
                    @for c in &v.contacts {
                        fieldset {
                            label { (t.s("card.contact_name")) input name={"contact_" (c.id) "_name"} value=(c.name.value); }
                            label { (t.s("card.contact_role")) input name={"contact_" (c.id) "_role"} value=(c.role.value); }
                            label { (t.s("card.contact_phone")) input name={"contact_" (c.id) "_phone"} value=(c.phone.value); }
                            label { input type="checkbox" name={"contact_" (c.id) "_remove"} value="1"; " " (t.s("card.remove_contact")) }
                        }
                    }
                    fieldset {
                        legend { (t.s("card.new_contact")) }
                        label { (t.s("card.contact_name")) input #new-contact-name name="new_contact_name"; }
                        label { (t.s("card.contact_role")) input name="new_contact_role"; }
                        label { (t.s("card.contact_phone")) input name="new_contact_phone"; }
                    }
                    label { (t.s("card.tags")) input #tags-input name="tags" value=(v.tags.join(", ")); }
                    button #save-card type="submit" { (t.s("common.save")) }
                }
            }
        }
        h3 { (t.s("card.history")) }
        table.list #card-history {
            thead { tr { th { (t.s("card.recorded")) } th { (t.s("card.received")) } th { (t.s("card.who")) } th { (t.s("card.what")) } } }
            tbody {
                @for h in &page.history { tr {
                    td { (fmt_time(h.device_time_ms, &user.timezone)) }
                    td { (fmt_time(h.received_at_ms, &user.timezone)) }
                    td { (h.name) " " span.muted { (t.s(if h.kind == "key_user" { "card.role.key_user" } else { "card.role.agent" })) } }
                    td { (h.summary.join(", ")) }
                } }
            }
        }
    }
}

/// The edits a posted form makes to the card it was rendered from (only what changed).
fn edits_from_form(page: &CardPage, form: &HashMap<String, String>) -> Vec<CardEdit> {
    let v = &page.view;
    let get = |k: &str| form.get(k).map(|s| s.trim().to_string());
    let mut edits = Vec::new();
    for (prefix, hours, was) in [
        ("open_", Hours::Opening, &v.opening),
        ("delivery_", Hours::Delivery, &v.delivery),
    ] {
        for day in WEEKDAYS {
            let Some(value) = get(&format!("{prefix}{day}")) else {
                continue;
            };
            let old = was.get(day);
            if old.is_some_and(|f| f.value == value && !f.is_conflict())
                || (old.is_none() && value.is_empty())
            {
                continue;
            }
            edits.push(CardEdit::Hours {
                hours,
                day: day.to_string(),
                value,
            });
        }
    }
    if let Some(notes) = form.get("notes") {
        // Browsers send textarea line ends as CRLF.
        let notes = notes.replace("\r\n", "\n");
        if notes != v.notes {
            edits.push(CardEdit::Notes(notes));
        }
    }
    for c in &v.contacts {
        let key = |f: &str| format!("contact_{}_{f}", c.id);
        if form.contains_key(&key("remove")) {
            edits.push(CardEdit::RemoveContact { id: c.id.clone() });
            continue;
        }
        let changed =
            |f: &str, old: &Field| get(&key(f)).filter(|n| *n != old.value || old.is_conflict());
        let (name, role, phone) = (
            changed("name", &c.name),
            changed("role", &c.role),
            changed("phone", &c.phone),
        );
        if name.is_some() || role.is_some() || phone.is_some() {
            edits.push(CardEdit::Contact {
                id: c.id.clone(),
                name,
                role,
                phone,
            });
        }
    }
    if let Some(name) = get("new_contact_name").filter(|n| !n.is_empty()) {
        edits.push(CardEdit::Contact {
            id: fieldsync_protocol::ids::new_id().to_string(),
            name: Some(name),
            role: get("new_contact_role"),
            phone: get("new_contact_phone"),
        });
    }
    if let Some(tags) = get("tags") {
        let wanted: Vec<String> = tags
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        for tag in &v.tags {
            if !wanted.contains(tag) {
                edits.push(CardEdit::Tag {
                    tag: tag.clone(),
                    on: false,
                });
            }
        }
        for tag in wanted {
            if !v.tags.contains(&tag) {
                edits.push(CardEdit::Tag { tag, on: true });
            }
        }
    }
    edits
}

fn refused(t: &T, e: KeyUserEditError) -> WebError {
    match e {
        KeyUserEditError::NoSuchOutlet => WebError::bad(t, "card.no_outlet"),
        KeyUserEditError::Refused(e) => {
            let detail = match &e {
                CardError::TooLarge(_) => t.s("card.too_large").to_string(),
                other => other.to_string(),
            };
            WebError::Page(
                axum::http::StatusCode::BAD_REQUEST,
                t.f("card.refused", &[("detail", &detail)]),
            )
        }
    }
}

async fn save_card(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, form): Change<HashMap<String, String>>,
) -> WebResult<Response> {
    let distributor = super::pages::writable_outlet(&state, &user, id).await?;
    let page = state.store.outlet_card(id).await?;
    let edits = edits_from_form(&page, &form);
    if !edits.is_empty() {
        state
            .store
            .edit_card_as_key_user(distributor, id, user.id, &user.login, &edits)
            .await?
            .map_err(|e| refused(&user.t(), e))?;
    }
    Ok(Redirect::to(&format!("/outlets/{id}#card")).into_response())
}

#[derive(Deserialize)]
struct DecideForm {
    field: String,
    accept: String,
}

async fn decide(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Change(user, form): Change<DecideForm>,
) -> WebResult<Response> {
    let distributor = super::pages::writable_outlet(&state, &user, id).await?;
    let edit = CardEdit::Decide {
        field: form.field,
        accept: form.accept == "1",
    };
    state
        .store
        .edit_card_as_key_user(distributor, id, user.id, &user.login, &[edit])
        .await?
        .map_err(|e| refused(&user.t(), e))?;
    Ok(Redirect::to(&format!("/outlets/{id}#card")).into_response())
}
