//! The outlet's shared card on the outlet screen: contact people, opening and delivery hours,
//! notes, tags and proposals of new master data, edited offline and merged with everyone
//! else's edits on sync. A field two people set at once is marked with the other values and
//! who entered them, until someone sets it again.
use std::collections::BTreeMap;

use dioxus::prelude::*;
use fieldsync_agent::WorkflowError;
use fieldsync_protocol::cards::{CardEdit, CardView, Field, Hours, PROPOSAL_FIELDS, WEEKDAYS};

use super::{ErrorLine, use_screen};
use crate::i18n::T;

/// "Also entered: “X” (Name), …" for a conflicting field; `None` when there is no conflict.
fn conflict_text(t: T, view: &CardView, f: &Field) -> Option<String> {
    if !f.is_conflict() {
        return None;
    }
    let others: Vec<String> = f
        .conflicts
        .iter()
        .map(|(value, actor)| {
            t.f(
                "card.value_by",
                &[("value", value.clone()), ("name", view.who(actor))],
            )
        })
        .collect();
    Some(t.f("card.conflict", &[("others", others.join(", "))]))
}

#[component]
fn Conflict(text: Option<String>) -> Element {
    rsx! {
        if let Some(text) = text {
            div { class: "conflict", "{text}" }
        }
    }
}

fn day_name(t: T, day: &str) -> String {
    t.s(&format!("day.{day}")).to_string()
}

fn field_name(t: T, field: &str) -> String {
    t.s(&format!("card.field.{field}")).to_string()
}

fn hours_text(t: T, f: Option<&Field>) -> String {
    match f {
        None => "—".to_string(),
        Some(f) if f.value.is_empty() => t.s("card.closed").to_string(),
        Some(f) => f.value.clone(),
    }
}

fn error_text(t: T, e: &WorkflowError) -> String {
    match e {
        WorkflowError::NotSynced => t.s("card.not_synced").to_string(),
        WorkflowError::InvalidCard(detail) => t.f("card.invalid", &[("detail", detail.clone())]),
        other => other.to_string(),
    }
}

#[component]
pub fn CardPanel(id: i64) -> Element {
    let (ctx, t, _nav, revision) = use_screen();
    revision.watch();
    let mut editing = use_signal(|| false);
    let mut message = use_signal(|| None::<Result<String, String>>);
    let screen = match ctx.engine.card(id) {
        Ok(s) => s,
        Err(e) => return rsx! { ErrorLine { message: error_text(t, &e) } },
    };
    let view = screen.view.clone();
    let conflicts = view.conflicts().len();
    let body = if editing() {
        rsx! { CardForm { id, view: view.clone(), editing, message } }
    } else {
        rsx! {
            h4 { "{t.s(\"card.contacts\")}" }
            if view.contacts.is_empty() {
                p { class: "muted", "{t.s(\"card.no_contacts\")}" }
            }
            ul { class: "list", id: "card-contacts",
                for c in view.contacts.iter() {
                    li { key: "{c.id}",
                        div { class: "grow",
                            div { "{c.name.value}" span { class: "muted", " {c.role.value}" } }
                            div { class: "muted", "{c.phone.value}" }
                            Conflict { text: conflict_text(t, &view, &c.name) }
                            Conflict { text: conflict_text(t, &view, &c.role) }
                            Conflict { text: conflict_text(t, &view, &c.phone) }
                        }
                    }
                }
            }
            h4 { "{t.s(\"card.hours\")}" }
            table { class: "hours", id: "card-hours",
                tr { th {} th { "{t.s(\"card.opening\")}" } th { "{t.s(\"card.delivery\")}" } }
                for day in WEEKDAYS {
                    tr { key: "{day}", id: "card-hours-{day}",
                        th { {day_name(t, day)} }
                        td { "{hours_text(t, view.opening.get(day))}"
                            Conflict { text: view.opening.get(day).and_then(|f| conflict_text(t, &view, f)) } }
                        td { "{hours_text(t, view.delivery.get(day))}"
                            Conflict { text: view.delivery.get(day).and_then(|f| conflict_text(t, &view, f)) } }
                    }
                }
            }
            h4 { "{t.s(\"card.notes\")}" }
            if view.notes.is_empty() {
                p { class: "muted", "{t.s(\"card.no_notes\")}" }
            } else {
                p { class: "notes", id: "card-notes", "{view.notes}" }
            }
            if !view.tags.is_empty() {
                div { class: "row", id: "card-tags",
                    for tag in view.tags.iter() { span { key: "{tag}", class: "badge", "{tag}" } }
                }
            }
            if !view.proposals.is_empty() || !view.decisions.is_empty() {
                h4 { "{t.s(\"card.proposals\")}" }
                ul { class: "list", id: "card-proposals",
                    for (field, f) in view.proposals.iter() {
                        li { key: "p-{field}",
                            div { class: "grow",
                                {t.f("card.proposal_waiting", &[("field", field_name(t, field)), ("value", f.value.clone())])}
                                Conflict { text: conflict_text(t, &view, f) }
                            }
                            span { class: "badge progress", "{t.s(\"card.waiting\")}" }
                        }
                    }
                    for (field, f) in view.decisions.iter() {
                        {
                            let (verdict, value) = f.value.split_once('\t').unwrap_or(("", &f.value));
                            let label = t.f("card.proposal_decided", &[("field", field_name(t, field)), ("value", value.to_string())]);
                            let badge = if verdict == "accepted" { t.s("card.accepted") } else { t.s("card.rejected") };
                            let class = if verdict == "accepted" { "badge done" } else { "badge rejected" };
                            rsx! {
                                li { key: "d-{field}",
                                    div { class: "grow", "{label}" }
                                    span { class, "{badge}" }
                                }
                            }
                        }
                    }
                }
            }
            div { class: "row",
                button { id: "card-edit", onclick: move |_| { message.set(None); editing.set(true) }, "{t.s(\"card.edit\")}" }
            }
        }
    };
    rsx! {
        section { class: "card", id: "outlet-card",
            h3 { "{t.s(\"card.title\")}" }
            if screen.pending > 0 {
                p { class: "muted", id: "card-pending",
                    "{t.f(\"card.pending\", &[(\"count\", screen.pending.to_string())])}" }
            }
            if conflicts > 0 {
                div { class: "warn", id: "card-conflicts",
                    "{t.f(\"card.conflicts\", &[(\"count\", conflicts.to_string())])}" }
            }
            match message() {
                Some(Ok(m)) => rsx! { p { class: "ok", id: "card-saved", "{m}" } },
                Some(Err(m)) => rsx! { p { class: "error", role: "alert", id: "card-error", "{m}" } },
                None => rsx! {},
            }
            {body}
        }
    }
}

/// Removes a tag or a contact person at once (one change).
fn remove(
    ctx: &super::AppCtx,
    t: T,
    id: i64,
    edit: CardEdit,
    mut message: Signal<Option<Result<String, String>>>,
    revision: super::Revision,
) {
    match ctx.engine.edit_card(id, &[edit]) {
        Ok(changed) => {
            message.set(changed.then(|| Ok(t.s("card.saved").to_string())));
            revision.bump();
        }
        Err(e) => message.set(Some(Err(error_text(t, &e)))),
    }
}

#[component]
fn CardForm(
    id: i64,
    view: CardView,
    editing: Signal<bool>,
    message: Signal<Option<Result<String, String>>>,
) -> Element {
    let (ctx, t, _nav, revision) = use_screen();
    let hours_of = |m: &BTreeMap<String, Field>| -> BTreeMap<String, String> {
        WEEKDAYS
            .iter()
            .map(|d| {
                (
                    d.to_string(),
                    m.get(*d).map(|f| f.value.clone()).unwrap_or_default(),
                )
            })
            .collect()
    };
    let (open0, deliv0) = (hours_of(&view.opening), hours_of(&view.delivery));
    let mut opening = use_signal(|| open0.clone());
    let mut delivery = use_signal(|| deliv0.clone());
    let mut notes = use_signal(|| view.notes.clone());
    let mut contact = use_signal(|| (String::new(), String::new(), String::new()));
    let mut tag = use_signal(String::new);
    let mut propose_field = use_signal(|| "address".to_string());
    let mut propose_value = use_signal(String::new);
    let before = view.clone();
    let save_ctx = ctx.clone();
    let save = move |_| {
        let mut edits = Vec::new();
        for (hours, now, was) in [
            (Hours::Opening, opening(), &before.opening),
            (Hours::Delivery, delivery(), &before.delivery),
        ] {
            for (day, value) in now {
                let value = value.trim().to_string();
                let old = was.get(&day);
                // A day never set and left empty stays unset; a shown conflict is settled by
                // saving the day, even unchanged.
                let unchanged = old.map(|f| f.value == value && !f.is_conflict());
                if unchanged == Some(true) || (old.is_none() && value.is_empty()) {
                    continue;
                }
                edits.push(CardEdit::Hours { hours, day, value });
            }
        }
        if notes() != before.notes {
            edits.push(CardEdit::Notes(notes()));
        }
        let (name, role, phone) = contact();
        if !name.trim().is_empty() {
            edits.push(CardEdit::Contact {
                id: fieldsync_protocol::ids::new_id().to_string(),
                name: Some(name.trim().to_string()),
                role: Some(role.trim().to_string()),
                phone: Some(phone.trim().to_string()),
            });
        }
        if !tag().trim().is_empty() {
            edits.push(CardEdit::Tag {
                tag: tag().trim().to_string(),
                on: true,
            });
        }
        if !propose_value().trim().is_empty() {
            edits.push(CardEdit::Propose {
                field: propose_field(),
                value: propose_value().trim().to_string(),
            });
        }
        match save_ctx.engine.edit_card(id, &edits) {
            Ok(changed) => {
                message.set(changed.then(|| Ok(t.s("card.saved").to_string())));
                editing.set(false);
                revision.bump();
            }
            Err(e) => message.set(Some(Err(error_text(t, &e)))),
        }
    };
    rsx! {
        form { id: "card-form", onsubmit: move |e| e.prevent_default(),
            table { class: "hours",
                tr { th {} th { "{t.s(\"card.opening\")}" } th { "{t.s(\"card.delivery\")}" } }
                for day in WEEKDAYS {
                    tr { key: "{day}",
                        th { {day_name(t, day)} }
                        td { input { id: "card-open-{day}", placeholder: "08:00-18:00",
                            value: "{opening().get(day).cloned().unwrap_or_default()}",
                            oninput: move |e| { opening.write().insert(day.to_string(), e.value()); } } }
                        td { input { id: "card-delivery-{day}", placeholder: "08:00-11:00",
                            value: "{delivery().get(day).cloned().unwrap_or_default()}",
                            oninput: move |e| { delivery.write().insert(day.to_string(), e.value()); } } }
                    }
                }
            }
            p { class: "muted", "{t.s(\"card.hours_hint\")}" }
            label { r#for: "card-notes-input", "{t.s(\"card.notes\")}" }
            textarea { id: "card-notes-input", rows: "4", value: "{notes}", oninput: move |e| notes.set(e.value()) }
            label { "{t.s(\"card.new_contact\")}" }
            div { class: "row",
                input { id: "card-contact-name", placeholder: "{t.s(\"card.contact_name\")}",
                    oninput: move |e| contact.write().0 = e.value() }
                input { id: "card-contact-role", placeholder: "{t.s(\"card.contact_role\")}",
                    oninput: move |e| contact.write().1 = e.value() }
                input { id: "card-contact-phone", r#type: "tel", placeholder: "{t.s(\"card.contact_phone\")}",
                    oninput: move |e| contact.write().2 = e.value() }
            }
            if !view.tags.is_empty() || !view.contacts.is_empty() {
                div { class: "row", id: "card-remove",
                    for tag in view.tags.iter().cloned() {
                        button { key: "t-{tag}", r#type: "button", id: "card-untag-{tag}",
                            onclick: {
                                let (ctx, tag) = (ctx.clone(), tag.clone());
                                move |_| remove(&ctx, t, id, CardEdit::Tag { tag: tag.clone(), on: false }, message, revision)
                            },
                            "{t.f(\"card.remove\", &[(\"what\", tag.clone())])}" }
                    }
                    for c in view.contacts.iter().cloned() {
                        button { key: "c-{c.id}", r#type: "button", id: "card-remove-contact-{c.id}",
                            onclick: {
                                let ctx = ctx.clone();
                                let cid = c.id.clone();
                                move |_| remove(&ctx, t, id, CardEdit::RemoveContact { id: cid.clone() }, message, revision)
                            },
                            "{t.f(\"card.remove\", &[(\"what\", c.name.value.clone())])}" }
                    }
                }
            }
            label { r#for: "card-tag", "{t.s(\"card.new_tag\")}" }
            input { id: "card-tag", oninput: move |e| tag.set(e.value()) }
            label { r#for: "card-propose-value", "{t.s(\"card.propose\")}" }
            div { class: "row",
                select { id: "card-propose-field", onchange: move |e| propose_field.set(e.value()),
                    for f in PROPOSAL_FIELDS {
                        option { key: "{f}", value: "{f}", selected: f == "address", {field_name(t, f)} }
                    }
                }
                input { id: "card-propose-value", placeholder: "{t.s(\"card.propose_value\")}",
                    oninput: move |e| propose_value.set(e.value()) }
            }
            div { class: "row",
                button { id: "card-save", class: "primary", r#type: "button", onclick: save, "{t.s(\"card.save\")}" }
                button { r#type: "button", onclick: move |_| editing.set(false), "{t.s(\"card.cancel\")}" }
            }
        }
    }
}
