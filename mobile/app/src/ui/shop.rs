//! The rest of the shop visit: purchase plans with their progress (an outlet's, and the
//! agent's own month on the Today screen), and claims on delivered goods (the outlet's list,
//! and the visit's claim form: a draft saved, registered or deleted).
use dioxus::prelude::*;
use fieldsync_agent::{ClaimDraft, ClaimLineDraft, PlanView};
use fieldsync_protocol::v1;
use uuid::Uuid;

use super::{Screen, VisitTab, currency, use_screen};
use crate::fmt;

/// A plan's target and progress in its measure.
fn amount(p: &PlanView, currency: &str, v: i64) -> String {
    match p.measure {
        v1::PlanMeasure::PlanQuantity => fmt::qty(v),
        _ => fmt::money(v, currency),
    }
}

/// The month's plans of an outlet, or with `outlet` 0 the agent's own month.
#[component]
pub fn PlanPanel(outlet: i64) -> Element {
    let (ctx, t, _, revision) = use_screen();
    revision.watch();
    let plans = ctx.engine.plans(outlet).unwrap_or_default();
    let currency = currency(&ctx.engine);
    let (title, id) = if outlet == 0 {
        (t.s("plan.my_month"), "my-month")
    } else {
        (t.s("plan.title"), "outlet-plan")
    };
    if plans.is_empty() {
        return rsx! {
            section { class: "plans", id,
                h3 { "{title}" }
                p { class: "muted", id: "{id}-none", "{t.s(\"plan.none\")}" }
            }
        };
    }
    rsx! {
        section { class: "plans", id,
            h3 { "{title}" }
            ul { class: "list",
                for p in plans {
                    li { key: "{p.id}", class: "plan", "data-percent": "{p.percent()}",
                        div { class: "grow",
                            div {
                                {
                                    let what = if !p.category.is_empty() {
                                        p.category.clone()
                                    } else if !p.brand.is_empty() {
                                        p.brand.clone()
                                    } else {
                                        t.s("plan.all_products").to_string()
                                    };
                                    rsx! { "{what}" }
                                }
                            }
                            div { class: "progress", div { class: "bar-fill", style: "width: {p.percent().clamp(0, 100)}%" } }
                            div { class: "muted",
                                "{t.f(\"plan.progress\", &[(\"achieved\", amount(&p, &currency, p.met())), (\"target\", amount(&p, &currency, p.target))])}"
                                " · "
                                {if p.achieved_from == "sales" { t.s("plan.from_sales") } else { t.s("plan.from_orders") }}
                            }
                        }
                        strong { class: "percent", "{p.percent()}%" }
                    }
                }
            }
        }
    }
}

/// The stage of a claim, translated.
pub(crate) fn stage_text(t: crate::i18n::T, stage: &str) -> &'static str {
    t.s(match stage {
        "draft" => "claim.stage_draft",
        "registered" => "claim.stage_registered",
        "being_considered" => "claim.stage_being_considered",
        "accepted" => "claim.stage_accepted",
        "declined" => "claim.stage_declined",
        _ => "claim.stage_draft",
    })
}

/// The claims of an outlet: stage, number and answer; a draft opens in the open visit.
#[component]
pub fn ClaimsPanel(outlet: i64) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    revision.watch();
    let claims = ctx.engine.outlet_claims(outlet).unwrap_or_default();
    let open = ctx
        .engine
        .open_visit()
        .ok()
        .flatten()
        .filter(|(_, o)| *o == outlet)
        .map(|(v, _)| v);
    rsx! {
        section { class: "claims", id: "outlet-claims",
            h3 { "{t.s(\"claim.title\")}" }
            if claims.is_empty() {
                p { class: "muted", "{t.s(\"claim.none\")}" }
            }
            ul { class: "list",
                for c in claims {
                    li { key: "{c.id}", class: "claim", "data-stage": "{c.stage}",
                        div { class: "grow",
                            div {
                                if c.number > 0 { strong { "{t.f(\"claim.number\", &[(\"number\", c.number.to_string())])} " } }
                                "{fmt::date_time(ctx.engine.local_ms(c.created_ms))}"
                            }
                            div { class: "muted", "{t.f(\"claim.lines\", &[(\"lines\", c.lines.len().to_string())])}" }
                            if !c.answer.is_empty() { div { class: "muted claim-answer", "{c.answer}" } }
                        }
                        span { class: "badge {c.stage}", "{stage_text(t, &c.stage)}" }
                        if c.is_draft() {
                            if let Some(visit) = open {
                                button { class: "open-claim", onclick: move |_| nav.go(Screen::Visit { visit, tab: VisitTab::Claim { claim: Some(c.id) } }),
                                    "{t.s(\"common.open\")}" }
                            }
                        }
                    }
                }
            }
            if let Some(visit) = open {
                button { id: "new-claim", onclick: move |_| nav.go(Screen::Visit { visit, tab: VisitTab::Claim { claim: None } }),
                    "{t.s(\"claim.new\")}" }
            }
        }
    }
}

/// One line of the claim form.
#[derive(Debug, Clone, PartialEq)]
struct FormLine {
    order_id: Uuid,
    line_no: i64,
    product: String,
    max_milli: i64,
    qty: String,
    type_id: i64,
    subtype_id: i64,
}

/// The visit's claim form: products of the outlet's earlier orders with a quantity, a type and
/// a subtype each, and a comment. Saved as a draft (editable, deletable) or registered.
#[component]
pub fn ClaimTab(visit: Uuid, claim: Option<Uuid>) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    let engine = ctx.engine.clone();
    let Ok(Some(v)) = engine.visit(visit) else {
        return rsx! { p { class: "error", "{t.s(\"visit.unknown\")}" } };
    };
    let outlet = v.outlet_id;
    let saved = claim.and_then(|c| engine.claim(c).ok().flatten());
    let locked = saved.as_ref().is_some_and(|c| !c.is_draft());
    let reasons = engine.claim_reasons().unwrap_or_default();
    let types: Vec<(i64, String)> = reasons
        .iter()
        .filter(|r| r.1 == 0)
        .map(|r| (r.0, r.2.clone()))
        .collect();
    let first_type = types.first().map(|x| x.0).unwrap_or(0);
    let init_saved = saved.clone();
    let init_engine = engine.clone();
    let mut lines = use_signal(move || {
        init_engine
            .claimable_lines(outlet)
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                let chosen = init_saved.as_ref().and_then(|c| {
                    c.lines
                        .iter()
                        .find(|x| x.line.order_id == l.order_id && x.line.line_no == l.line_no)
                        .map(|x| x.line.clone())
                });
                FormLine {
                    order_id: l.order_id,
                    line_no: l.line_no,
                    product: format!(
                        "{} · {}",
                        l.product_name,
                        if l.order_number > 0 {
                            format!("№ {}", l.order_number)
                        } else {
                            fmt::date(l.order_created_ms)
                        }
                    ),
                    max_milli: l.max_milli,
                    qty: chosen
                        .as_ref()
                        .map(|c| fmt::qty(c.quantity_milli))
                        .unwrap_or_default(),
                    type_id: chosen.as_ref().map(|c| c.type_id).unwrap_or(first_type),
                    subtype_id: chosen.as_ref().map(|c| c.subtype_id).unwrap_or(0),
                }
            })
            .collect::<Vec<_>>()
    });
    let mut comment = use_signal(|| {
        saved
            .as_ref()
            .map(|c| c.comment.clone())
            .unwrap_or_default()
    });
    let mut claim_id = use_signal(|| claim);
    let mut message = use_signal(|| None::<(bool, String)>);
    let build = move |register: bool| -> Result<ClaimDraft, String> {
        let mut out = Vec::new();
        for l in lines.read().iter() {
            if l.qty.trim().is_empty() {
                continue;
            }
            let q = fmt::parse_qty(&l.qty)
                .ok_or_else(|| t.f("order.bad_quantity", &[("value", l.qty.clone())]))?;
            if q > 0 {
                out.push(ClaimLineDraft {
                    order_id: l.order_id,
                    line_no: l.line_no,
                    quantity_milli: q,
                    type_id: l.type_id,
                    subtype_id: l.subtype_id,
                });
            }
        }
        Ok(ClaimDraft {
            claim_id: claim_id(),
            visit_id: Some(visit),
            outlet_id: outlet,
            lines: out,
            comment: comment(),
            register,
        })
    };
    let save_engine = engine.clone();
    let mut save = move |register: bool| match build(register) {
        Err(m) => message.set(Some((false, m))),
        Ok(d) => match save_engine.save_claim(d) {
            Ok(id) => {
                claim_id.set(Some(id));
                revision.bump();
                if register {
                    nav.replace(Screen::Outlet(outlet));
                } else {
                    message.set(Some((true, t.s("claim.saved").to_string())));
                }
            }
            Err(e) => message.set(Some((false, t.workflow_error(&e)))),
        },
    };
    let delete_engine = engine.clone();
    let delete = move |_| {
        if let Some(id) = claim_id() {
            match delete_engine.delete_claim(id) {
                Ok(()) => {
                    revision.bump();
                    nav.replace(Screen::Outlet(outlet));
                }
                Err(e) => message.set(Some((false, t.workflow_error(&e)))),
            }
        }
    };
    if locked {
        let c = saved.expect("locked means saved");
        return rsx! {
            div { class: "claim-form", id: "claim-locked",
                p { class: "warn", "{t.f(\"claim.locked\", &[(\"stage\", stage_text(t, &c.stage).to_string())])}" }
                ul { class: "list",
                    for l in c.lines {
                        li { key: "{l.line.order_id}-{l.line.line_no}",
                            div { class: "grow", "{l.product_name}" div { class: "muted", "{l.type_name} {l.subtype_name}" } }
                            span { "{fmt::qty(l.line.quantity_milli)}" }
                        }
                    }
                }
            }
        };
    }
    if types.is_empty() {
        return rsx! { p { class: "muted", id: "claim-no-types", "{t.s(\"claim.no_types\")}" } };
    }
    rsx! {
        div { class: "claim-form",
            if lines.read().is_empty() {
                p { class: "muted", id: "claim-no-orders", "{t.s(\"claim.no_orders\")}" }
            }
            ul { class: "list", id: "claim-lines",
                for (i, l) in lines.read().iter().cloned().enumerate() {
                    li { key: "{l.order_id}-{l.line_no}", class: "claim-line",
                        div { class: "grow",
                            div { "{l.product}" }
                            div { class: "muted", "{t.f(\"claim.delivered\", &[(\"qty\", fmt::qty(l.max_milli))])}" }
                            div { class: "row",
                                select { class: "claim-type", id: "claim-type-{i}",
                                    onchange: move |e| { let mut w = lines.write(); w[i].type_id = e.value().parse().unwrap_or(0); w[i].subtype_id = 0; },
                                    for (id, name) in types.iter().cloned() {
                                        option { key: "{id}", value: "{id}", selected: id == l.type_id, "{name}" }
                                    }
                                }
                                select { class: "claim-subtype", id: "claim-subtype-{i}",
                                    onchange: move |e| lines.write()[i].subtype_id = e.value().parse().unwrap_or(0),
                                    option { value: "0", selected: l.subtype_id == 0, "—" }
                                    for (id, _, name) in reasons.iter().filter(|r| r.1 == l.type_id).cloned() {
                                        option { key: "{id}", value: "{id}", selected: id == l.subtype_id, "{name}" }
                                    }
                                }
                            }
                        }
                        input { class: "qty", id: "claim-qty-{i}", inputmode: "decimal", placeholder: "0", value: "{l.qty}",
                            oninput: move |e| lines.write()[i].qty = e.value() }
                    }
                }
            }
            label { r#for: "claim-comment", "{t.s(\"claim.comment\")}" }
            textarea { id: "claim-comment", value: "{comment}", oninput: move |e| comment.set(e.value()) }
            if let Some((ok, m)) = message() {
                p { class: if ok { "ok" } else { "error" }, role: "status", id: "claim-message", "{m}" }
            }
            div { class: "row",
                button { id: "save-claim", onclick: { let mut save = save.clone(); move |_| save(false) }, "{t.s(\"claim.save_draft\")}" }
                button { id: "register-claim", class: "primary", onclick: move |_| save(true), "{t.s(\"claim.register\")}" }
                if claim_id().is_some() {
                    button { id: "delete-claim", class: "danger", onclick: delete, "{t.s(\"claim.delete\")}" }
                }
            }
        }
    }
}
