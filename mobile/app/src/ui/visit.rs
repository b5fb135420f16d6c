//! A visit: where the fix was, what has been done, the order editor, and ending the visit
//! once every questionnaire with required questions is answered.
use dioxus::prelude::*;
use fieldsync_agent::OrderDraft;
use fieldsync_protocol::location::Band;
use fieldsync_protocol::v1;
use uuid::Uuid;

use super::outlet::DebtPanel;
use super::{
    ClaimTab, DistributionTab, ErrorLine, ItemText, PlanPanel, QuestionnaireTab, Screen, VisitTab,
    currency, found, use_screen,
};
use crate::fmt;
use crate::location::{bands_of, check_fix};

#[component]
pub fn VisitScreen(visit: Uuid, tab: VisitTab) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    revision.watch();
    let engine = ctx.engine.clone();
    let v = match found(engine.visit(visit), t.s("visit.unknown")) {
        Ok(v) => v,
        Err(line) => return line,
    };
    let outlet = engine.outlet(v.outlet_id).ok().flatten();
    let outlet_name = outlet.as_ref().map(|o| o.name.clone()).unwrap_or_default();
    let open = v.ended_ms.is_none();
    let subtab = |key: &'static str, id: &'static str, target: VisitTab, on: bool| {
        rsx! {
            button { id, class: if on { "on" } else { "" },
                onclick: move |_| nav.replace(Screen::Visit { visit, tab: target.clone() }), "{t.s(key)}" }
        }
    };
    let body = match tab.clone() {
        VisitTab::Summary => rsx! { VisitSummary { visit } },
        VisitTab::Order { draft } if open => rsx! { OrderTab { visit, draft } },
        VisitTab::Distribution if open => rsx! { DistributionTab { visit } },
        VisitTab::Questionnaire { id, validate } if open => {
            rsx! { QuestionnaireTab { visit, id, validate } }
        }
        VisitTab::Claim { claim } if open => rsx! { ClaimTab { visit, claim } },
        _ => rsx! { VisitSummary { visit } },
    };
    rsx! {
        div { class: "visit",
            h2 { id: "visit-outlet", "{outlet_name}" }
            if open {
                div { class: "subtabs",
                    {subtab("visit.tab_summary", "tab-summary", VisitTab::Summary, tab == VisitTab::Summary)}
                    {subtab("visit.tab_order", "tab-order", VisitTab::Order { draft: None }, matches!(tab, VisitTab::Order { .. }))}
                    {subtab("visit.tab_distribution", "tab-distribution", VisitTab::Distribution, tab == VisitTab::Distribution)}
                    {subtab("visit.tab_questionnaire", "tab-questionnaire", VisitTab::Questionnaire { id: None, validate: false }, matches!(tab, VisitTab::Questionnaire { .. }))}
                    {subtab("visit.tab_claim", "tab-claim", VisitTab::Claim { claim: None }, matches!(tab, VisitTab::Claim { .. }))}
                }
            }
            {body}
        }
    }
}

/// Questionnaires that must be answered before the visit can end: those with a required
/// question that is always shown.
pub(crate) fn missing_questionnaires(ctx: &super::AppCtx, visit: Uuid) -> Vec<(i64, String)> {
    let done = ctx
        .engine
        .visit_activity(visit)
        .map(|a| a.questionnaires)
        .unwrap_or_default();
    ctx.engine
        .questionnaires_for_visit(visit)
        .unwrap_or_default()
        .into_iter()
        .filter(|q| {
            q.questions
                .iter()
                .any(|x| x.required && x.condition.is_none())
        })
        .filter(|q| !done.contains(&q.id))
        .map(|q| (q.id, q.name))
        .collect()
}

#[component]
fn VisitSummary(visit: Uuid) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    revision.watch();
    let mut message = use_signal(|| None::<String>);
    let engine = ctx.engine.clone();
    let Ok(Some(v)) = engine.visit(visit) else {
        return rsx! { ErrorLine { message: t.s("visit.unknown").to_string() } };
    };
    let distributor = engine.distributor().ok().flatten();
    let currency = distributor
        .as_ref()
        .map(|d| d.currency.clone())
        .unwrap_or_default();
    let reference = engine
        .outlet(v.outlet_id)
        .ok()
        .flatten()
        .and_then(|o| o.location);
    let fix = v.start_fix.map(
        |(lat_e7, lon_e7, accuracy_dm)| fieldsync_protocol::v1::GpsFix {
            lat_e7,
            lon_e7,
            accuracy_dm,
            mock: v.start_mock,
            ..Default::default()
        },
    );
    let check = check_fix(fix.as_ref(), reference, bands_of(distributor.as_ref()));
    let activity = engine.visit_activity(visit).unwrap_or_default();
    let missing = missing_questionnaires(&ctx, visit);
    let open = v.ended_ms.is_none();
    let end = {
        let ctx = ctx.clone();
        move |_| {
            if !missing_questionnaires(&ctx, visit).is_empty() {
                return;
            }
            let fixes = ctx.location.current_fix().ok().into_iter().collect();
            match ctx.engine.end_visit(visit, fixes) {
                Ok(()) => {
                    revision.bump();
                    nav.root(Screen::Today);
                }
                Err(e) => message.set(Some(t.workflow_error(&e))),
            }
        }
    };
    let accuracy = check
        .accuracy_m
        .map(fmt::distance)
        .unwrap_or_else(|| "—".into());
    let distance = check
        .distance_m
        .map(fmt::distance)
        .unwrap_or_else(|| "—".into());
    rsx! {
        dl { id: "visit-fix",
            dt { "{t.s(\"visit.started\")}" } dd { "{fmt::date_time(engine.local_ms(v.started_ms))}" }
            if let Some(end) = v.ended_ms {
                dt { "{t.s(\"visit.ended\")}" } dd { "{fmt::date_time(engine.local_ms(end))}" }
            }
            dt { "{t.s(\"visit.accuracy\")}" } dd { id: "fix-accuracy", "{accuracy}" }
            dt { "{t.s(\"visit.distance\")}" } dd { id: "fix-distance", "{distance}" }
            dt { "{t.s(\"visit.band\")}" } dd { id: "fix-band", "{t.band(check.band)}" }
        }
        if check.mock {
            div { class: "warn", id: "warn-mock", "{t.s(\"visit.warn_mock\")}" }
        }
        if check.band == Band::NoFix {
            div { class: "warn", id: "warn-no-fix", "{t.s(\"visit.warn_no_fix\")}" }
        }
        if check.far {
            div { class: "warn", id: "warn-far", "{t.f(\"visit.warn_far\", &[(\"distance\", distance.clone())])}" }
        }
        if check.inaccurate {
            div { class: "warn", id: "warn-inaccurate", "{t.f(\"visit.warn_inaccurate\", &[(\"accuracy\", accuracy.clone())])}" }
        }
        if check.band == Band::NoReference {
            p { class: "muted", "{t.s(\"visit.no_reference\")}" }
        }
        h3 { "{t.s(\"visit.done_so_far\")}" }
        ul { class: "list", id: "visit-activity",
            for (order, total, state) in activity.orders.clone() {
                li { key: "{order}",
                    span { class: "grow", "{t.s(\"visit.order\")}" }
                    span { "{fmt::money(total, &currency)}" }
                    span { class: "badge {state}", "{t.order_state(&state)}" }
                }
            }
            for (items, present) in activity.distribution.clone() {
                li { span { class: "grow", "{t.s(\"visit.tab_distribution\")}" }
                     span { "{t.f(\"visit.present_of\", &[(\"present\", present.to_string()), (\"items\", items.to_string())])}" } }
            }
            for q in activity.questionnaires.clone() {
                li { span { class: "grow", "{t.s(\"visit.tab_questionnaire\")}" }
                     span { class: "muted", "{engine.questionnaire(q).ok().flatten().map(|q| q.name).unwrap_or_default()}" }
                     span { class: "badge done", "✓" } }
            }
        }
        if activity.orders.is_empty() && activity.distribution.is_empty() && activity.questionnaires.is_empty() {
            p { class: "muted", "{t.s(\"visit.nothing_yet\")}" }
        }
        if open {
            if !missing.is_empty() {
                div { class: "warn", id: "end-blockers",
                    p { "{t.s(\"visit.answer_before_end\")}" }
                    ul {
                        for (qid, name) in missing.clone() {
                            li { key: "{qid}",
                                a { href: "#", onclick: move |e| { e.prevent_default(); nav.replace(Screen::Visit { visit, tab: VisitTab::Questionnaire { id: Some(qid), validate: true } }) },
                                    "{name}" }
                            }
                        }
                    }
                }
            }
            button { id: "end-visit", class: "primary", disabled: !missing.is_empty(), onclick: end, "{t.s(\"visit.end\")}" }
        }
        if let Some(m) = message() { ErrorLine { message: m } }
        // What the outlet owes and its plan, at hand during the visit.
        DebtPanel { outlet: v.outlet_id }
        PlanPanel { outlet: v.outlet_id }
    }
}

/// One line of the order being composed.
#[derive(Debug, Clone, PartialEq)]
struct CartLine {
    product_id: i64,
    code: String,
    name: String,
    qty_milli: i64,
}

#[component]
pub fn OrderTab(visit: Uuid, draft: Option<Uuid>) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    let engine = ctx.engine.clone();
    let Ok(Some(v)) = engine.visit(visit) else {
        return rsx! { ErrorLine { message: t.s("visit.unknown").to_string() } };
    };
    let Ok(Some(outlet)) = engine.outlet(v.outlet_id) else {
        return rsx! { ErrorLine { message: t.s("outlet.unknown").to_string() } };
    };
    let price_list = outlet.price_list_id;
    let warehouses = engine.warehouses().unwrap_or_default();
    let saved = draft.and_then(|d| engine.order_draft(d).ok().flatten());
    let mut draft_id = use_signal(|| saved.as_ref().map(|s| s.id));
    let init = saved.clone();
    let init_engine = engine.clone();
    let mut cart = use_signal(move || {
        init.map(|s| {
            s.draft
                .lines
                .iter()
                .filter_map(|(pid, q)| {
                    let p = init_engine.product(*pid, price_list).ok().flatten()?;
                    Some(CartLine {
                        product_id: p.id,
                        code: p.code,
                        name: p.name,
                        qty_milli: *q,
                    })
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    });
    let first_wh = warehouses.first().map(|w| w.id).unwrap_or(0);
    let mut warehouse = use_signal(|| {
        saved
            .as_ref()
            .map(|s| s.draft.warehouse_id)
            .filter(|w| *w != 0)
            .unwrap_or(first_wh)
    });
    let mut comment = use_signal(|| {
        saved
            .as_ref()
            .map(|s| s.draft.comment.clone())
            .unwrap_or_default()
    });
    let mut overdue_reason = use_signal(String::new);
    let debt = engine.receivables(v.outlet_id).unwrap_or_default();
    let overdue = debt.has_overdue();
    let reason_required =
        overdue && engine.overdue_policy().ok() == Some(v1::OverduePolicy::RequireReason);
    let overdue_text = debt
        .totals
        .iter()
        .filter(|x| x.overdue_minor > 0)
        .map(|x| fmt::money(x.overdue_minor, &x.currency))
        .collect::<Vec<_>>()
        .join(", ");
    let mut query = use_signal(String::new);
    let mut message = use_signal(|| None::<(bool, String)>);
    let search_engine = engine.clone();
    let results = use_memo(move || {
        search_engine
            .search_products(&query(), price_list, 30)
            .unwrap_or_default()
    });
    let currency = currency(&engine);
    let build = move || OrderDraft {
        visit_id: Some(visit),
        outlet_id: v.outlet_id,
        price_list_id: 0,
        warehouse_id: warehouse(),
        lines: cart
            .read()
            .iter()
            .filter(|l| l.qty_milli > 0)
            .map(|l| (l.product_id, l.qty_milli))
            .collect(),
        comment: comment(),
        delivery_date: String::new(),
        draft_id: draft_id(),
        overdue_reason: overdue_reason(),
    };
    let priced = engine.price_order(&build());
    let lines = priced.map(|(_, lines)| lines).unwrap_or_default();
    let total =
        fieldsync_protocol::money::order_total(lines.iter().map(|l| l.sum_minor)).unwrap_or(0);
    let mut set_qty = move |p: &fieldsync_agent::ProductView, raw: String| {
        let Some(q) = fmt::parse_qty(&raw) else {
            message.set(Some((false, t.f("order.bad_quantity", &[("value", raw)]))));
            return;
        };
        message.set(None);
        let mut c = cart.write();
        match c.iter_mut().find(|l| l.product_id == p.id) {
            Some(l) => l.qty_milli = q,
            None if q > 0 => c.push(CartLine {
                product_id: p.id,
                code: p.code.clone(),
                name: p.name.clone(),
                qty_milli: q,
            }),
            None => {}
        }
        c.retain(|l| l.qty_milli > 0);
    };
    let save_engine = engine.clone();
    let save = move |_| match save_engine.save_order_draft(&build()) {
        Ok(id) => {
            draft_id.set(Some(id));
            revision.bump();
            message.set(Some((true, t.s("order.draft_saved").to_string())));
        }
        Err(e) => message.set(Some((false, e.to_string()))),
    };
    let place_engine = engine.clone();
    let place = move |_| match place_engine.place_order(build()) {
        Ok(_) => {
            revision.bump();
            nav.replace(Screen::Visit {
                visit,
                tab: VisitTab::Summary,
            });
        }
        Err(e) => message.set(Some((false, t.workflow_error(&e)))),
    };
    // Stock on hand in the chosen warehouse of what the catalogue shows and the cart holds.
    let shown: Vec<i64> = results()
        .iter()
        .map(|p| p.id)
        .chain(cart.read().iter().map(|l| l.product_id))
        .collect();
    let on_hand = engine
        .stock_on_hand(warehouse(), &shown)
        .unwrap_or_default();
    let beyond: Vec<(i64, i64, i64)> = engine.beyond_stock(&build()).unwrap_or_default();
    let qty_of = move |pid: i64| {
        cart.read()
            .iter()
            .find(|l| l.product_id == pid)
            .map(|l| fmt::qty(l.qty_milli))
            .unwrap_or_default()
    };
    rsx! {
        div { class: "order",
            label { r#for: "product-search", "{t.s(\"order.catalogue\")}" }
            input { id: "product-search", r#type: "search", placeholder: t.s("order.search"), value: "{query}",
                oninput: move |e| query.set(e.value()) }
            ul { class: "list", id: "catalogue",
                for p in results() {
                    li { key: "{p.id}",
                        ItemText { line: p.name.clone(), under: format!("{} · {}", p.code, p.unit) }
                        if let Some(q) = on_hand.get(&p.id) {
                            span { class: "muted", id: "stock-{p.code}", "{t.f(\"order.on_hand\", &[(\"qty\", fmt::qty(*q))])}" }
                        }
                        match p.price_minor {
                            Some(price) => rsx! { span { "{fmt::money(price, &currency)}" } },
                            None => rsx! { span { class: "muted", "{t.s(\"order.no_price\")}" } },
                        }
                        input { class: "qty", id: "qty-{p.code}", inputmode: "decimal", disabled: p.price_minor.is_none(),
                            value: "{qty_of(p.id)}", placeholder: "0",
                            oninput: { let p = p.clone(); move |e: FormEvent| set_qty(&p, e.value()) } }
                    }
                }
            }
            h3 { "{t.s(\"order.lines\")}" }
            if cart.read().is_empty() {
                p { class: "muted", id: "order-empty", "{t.s(\"order.no_lines\")}" }
            }
            ul { class: "list", id: "order-lines",
                for l in cart.read().iter().cloned() {
                    li { key: "{l.product_id}",
                        div { class: "grow", "{l.name}" div { class: "muted", "{l.code}" }
                            if let Some((_, _, held)) = beyond.iter().find(|b| b.0 == l.product_id) {
                                div { class: "warn", role: "status", id: "beyond-{l.product_id}",
                                    "{t.f(\"order.beyond_stock\", &[(\"qty\", fmt::qty(*held))])}" }
                            }
                        }
                        span { "{fmt::qty(l.qty_milli)} ×" }
                        {
                            let priced = lines.iter().find(|x| x.product_id == l.product_id);
                            rsx! {
                                span { "{priced.map(|x| fmt::money(x.price_minor, &currency)).unwrap_or_default()}" }
                                strong { "{priced.map(|x| fmt::money(x.sum_minor, &currency)).unwrap_or_default()}" }
                            }
                        }
                        button { class: "danger", onclick: move |_| cart.write().retain(|x| x.product_id != l.product_id), "✕" }
                    }
                }
            }
            div { class: "total", id: "order-total", "{t.s(\"order.total\")}: {fmt::money(total, &currency)}" }
            label { r#for: "warehouse", "{t.s(\"order.warehouse\")}" }
            select { id: "warehouse", onchange: move |e| warehouse.set(e.value().parse().unwrap_or(0)),
                for w in warehouses {
                    option { key: "{w.id}", value: "{w.id}", selected: w.id == warehouse(), "{w.name}" }
                }
            }
            label { r#for: "order-comment", "{t.s(\"order.comment\")}" }
            textarea { id: "order-comment", value: "{comment}", oninput: move |e| comment.set(e.value()) }
            if overdue {
                div { class: "warn", role: "status", id: "order-overdue",
                    "{t.f(\"order.overdue_warning\", &[(\"amount\", overdue_text.clone())])}" }
                label { r#for: "overdue-reason",
                    if reason_required { "{t.s(\"order.overdue_reason_required\")}" } else { "{t.s(\"order.overdue_reason\")}" } }
                textarea { id: "overdue-reason", value: "{overdue_reason}", oninput: move |e| overdue_reason.set(e.value()) }
            }
            if let Some((ok, m)) = message() {
                p { class: if ok { "ok" } else { "error" }, role: "status", "{m}" }
            }
            div { class: "row",
                button { id: "save-draft", onclick: save, "{t.s(\"order.save_draft\")}" }
                button { id: "place-order", class: "primary", disabled: cart.read().is_empty(), onclick: place, "{t.s(\"order.place\")}" }
            }
        }
    }
}
