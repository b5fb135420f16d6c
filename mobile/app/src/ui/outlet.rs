//! Outlet card: address, contacts, reference location, last visits and orders with the
//! statuses the distributor sent back, and the button that starts a visit.
use dioxus::prelude::*;
use fieldsync_protocol::location::e7_to_deg;

use super::card::CardPanel;
use super::{
    ClaimsPanel, ErrorLine, ItemText, PlanPanel, Screen, TitledList, VisitTab, currency, found,
    use_screen,
};
use crate::fmt;
use crate::location::distance_to;

#[component]
pub fn OutletScreen(id: i64) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    revision.watch();
    let mut message = use_signal(|| None::<String>);
    let engine = ctx.engine.clone();
    let outlet = match found(engine.outlet(id), t.s("outlet.unknown")) {
        Ok(o) => o,
        Err(line) => return line,
    };
    let currency = currency(&engine);
    let open = engine.open_visit().ok().flatten();
    let here = ctx.location.last_known();
    let visits = engine.outlet_visits(id, 10).unwrap_or_default();
    let orders = engine.outlet_orders(id, 10).unwrap_or_default();
    let drafts = engine.order_drafts(id).unwrap_or_default();
    let route_id = engine
        .route(&engine.today())
        .ok()
        .and_then(|stops| stops.into_iter().find(|s| s.outlet.id == id))
        .map(|s| s.route_id);
    let reference = outlet.location;
    let start = {
        let ctx = ctx.clone();
        move |_| {
            // A fix is taken but never required: no fix still starts the visit (and says so).
            let fixes = ctx.location.current_fix().ok().into_iter().collect();
            match ctx.engine.start_visit(id, route_id, fixes) {
                Ok(visit) => {
                    revision.bump();
                    nav.replace(Screen::Visit {
                        visit,
                        tab: VisitTab::Summary,
                    });
                }
                Err(e) => message.set(Some(e.to_string())),
            }
        }
    };
    let action = match open {
        Some((visit, o)) if o == id => rsx! {
            button { id: "resume-visit", class: "primary",
                onclick: move |_| nav.go(Screen::Visit { visit, tab: VisitTab::Summary }),
                "{t.s(\"outlet.resume_visit\")}" }
        },
        Some((visit, other)) => {
            let name = engine
                .outlet(other)
                .ok()
                .flatten()
                .map(|o| o.name)
                .unwrap_or_default();
            rsx! {
                div { class: "warn", id: "other-visit-open",
                    "{t.f(\"outlet.other_visit_open\", &[(\"outlet\", name.clone())])} "
                    button { onclick: move |_| nav.go(Screen::Visit { visit, tab: VisitTab::Summary }),
                        "{t.s(\"today.resume\")}" }
                }
            }
        }
        None => rsx! {
            button { id: "start-visit", class: "primary", onclick: start, "{t.s(\"outlet.start_visit\")}" }
        },
    };
    rsx! {
        div { class: "outlet",
            h2 { id: "outlet-name", "{outlet.name}" }
            dl {
                dt { "{t.s(\"outlet.code\")}" } dd { "{outlet.code}" }
                dt { "{t.s(\"outlet.address\")}" } dd { "{outlet.address}" }
                dt { "{t.s(\"outlet.contact\")}" } dd { "{outlet.contact_name}" }
                dt { "{t.s(\"outlet.phone\")}" } dd { "{outlet.phone}" }
                dt { "{t.s(\"outlet.location\")}" }
                dd { id: "outlet-location",
                    match reference {
                        Some((lat, lon)) => {
                            let away = here.as_ref().map(|h| fmt::distance(distance_to(h, (lat, lon)))).unwrap_or_default();
                            rsx! { "{e7_to_deg(lat):.6}, {e7_to_deg(lon):.6} " span { class: "muted", "{away}" } }
                        }
                        None => rsx! { span { class: "muted", "{t.s(\"outlet.no_location\")}" } },
                    }
                }
            }
            {action}
            if let Some(m) = message() { ErrorLine { message: m } }
            CardPanel { id }
            if !drafts.is_empty() {
                TitledList { title: t.s("outlet.drafts"), id: "outlet-drafts",
                    for d in drafts {
                        li { key: "{d.id}",
                            div { class: "grow",
                                "{t.f(\"outlet.draft_lines\", &[(\"lines\", d.draft.lines.len().to_string())])}"
                                div { class: "muted", "{fmt::date_time(engine.local_ms(d.updated_ms))}" }
                            }
                            if let Some((visit, _)) = open.filter(|(_, o)| *o == id) {
                                button { onclick: move |_| nav.go(Screen::Visit { visit, tab: VisitTab::Order { draft: Some(d.id) } }),
                                    "{t.s(\"common.open\")}" }
                            } else {
                                span { class: "muted", "{t.s(\"outlet.draft_needs_visit\")}" }
                            }
                        }
                    }
                }
            }
            DebtPanel { outlet: id }
            PlanPanel { outlet: id }
            TitledList { title: t.s("outlet.orders"), id: "outlet-orders", empty: orders.is_empty().then(|| t.s("outlet.no_orders")),
                for (order, total, state, created) in orders {
                    li { key: "{order}", class: "order-fate",
                        div { class: "grow",
                            {
                                let fate = engine.order_fate(order).ok().flatten();
                                let number = fate.as_ref().map(|f| f.number).unwrap_or(0);
                                let reason = fate.as_ref().map(|f| f.reason.clone()).unwrap_or_default();
                                let reported = fate.as_ref().map(|f| f.lines.iter().any(|l| l.confirmed_milli.is_some() || l.shipped_milli.is_some())).unwrap_or(false);
                                let lines = fate.map(|f| f.lines).unwrap_or_default();
                                rsx! {
                                    div {
                                        if number > 0 { strong { class: "order-number", "{t.f(\"outlet.order_number\", &[(\"number\", number.to_string())])} " } }
                                        "{fmt::date_time(engine.local_ms(created))}"
                                    }
                                    if !reason.is_empty() { div { class: "muted", "{reason}" } }
                                    if reported {
                                        table { class: "fate",
                                            thead { tr {
                                                th { "{t.s(\"outlet.fate_product\")}" }
                                                th { "{t.s(\"outlet.fate_ordered\")}" }
                                                th { "{t.s(\"outlet.fate_confirmed\")}" }
                                                th { "{t.s(\"outlet.fate_shipped\")}" }
                                            } }
                                            tbody {
                                                for l in lines {
                                                    tr { key: "{l.line_no}", class: if l.differs() { "differs" } else { "" },
                                                        td { "{l.product_name}" }
                                                        td { "{fmt::qty(l.ordered_milli)}" }
                                                        td { "{l.confirmed_milli.map(fmt::qty).unwrap_or_else(|| \"—\".into())}" }
                                                        td { "{l.shipped_milli.map(fmt::qty).unwrap_or_else(|| \"—\".into())}" }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        span { "{fmt::money(total, &currency)}" }
                        span { class: "badge {state}", "{t.order_state(&state)}" }
                    }
                }
            }
            ClaimsPanel { outlet: id }
            TitledList { title: t.s("outlet.visits"), id: "outlet-visits", empty: visits.is_empty().then(|| t.s("outlet.no_visits")),
                for v in visits {
                    li { key: "{v.id}",
                        ItemText { line: fmt::date_time(engine.local_ms(v.started_ms)),
                            under: match v.ended_ms {
                                Some(end) => t.f("outlet.visit_minutes", &[("minutes", fmt::minutes(v.started_ms, end).to_string())]),
                                None => t.s("state.in_progress").to_string(),
                            }
                        }
                        span { class: "muted",
                            match (v.start_fix, reference) {
                                (Some((lat, lon, _)), Some(r)) => fmt::distance(fieldsync_protocol::location::distance_m(lat, lon, r.0, r.1)),
                                (None, _) => t.s("visit.no_fix").to_string(),
                                _ => String::new(),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the outlet owes: totals (overdue, due this week, all) and its open invoices.
#[component]
pub fn DebtPanel(outlet: i64) -> Element {
    let (ctx, t, _, revision) = use_screen();
    revision.watch();
    let debt = ctx.engine.receivables(outlet).unwrap_or_default();
    if debt.invoices.is_empty() {
        return rsx! {
            section { class: "debt", id: "outlet-debt",
                h3 { "{t.s(\"debt.title\")}" }
                p { class: "muted", id: "debt-none", "{t.s(\"debt.none\")}" }
            }
        };
    }
    rsx! {
        section { class: "debt", id: "outlet-debt",
            h3 { "{t.s(\"debt.title\")}" }
            for x in debt.totals.iter().cloned() {
                dl { key: "{x.currency}", class: "debt-totals",
                    dt { "{t.s(\"debt.owed\")}" } dd { id: "debt-owed", "{fmt::money(x.owed_minor, &x.currency)}" }
                    dt { "{t.s(\"debt.overdue\")}" }
                    dd { id: "debt-overdue", class: if x.overdue_minor > 0 { "overdue" } else { "" }, "{fmt::money(x.overdue_minor, &x.currency)}" }
                    dt { "{t.s(\"debt.due_week\")}" } dd { id: "debt-week", "{fmt::money(x.due_this_week_minor, &x.currency)}" }
                }
            }
            ul { class: "list", id: "debt-invoices",
                for i in debt.invoices.iter().cloned() {
                    li { key: "{i.number}", class: if i.overdue { "overdue" } else { "" },
                        ItemText { line: i.number.clone(),
                            under: if i.overdue {
                                t.f("debt.overdue_days", &[("due", i.due_date.clone()), ("days", i.days_overdue.to_string())])
                            } else {
                                t.f("debt.due_on", &[("due", i.due_date.clone())])
                            }
                        }
                        strong { "{fmt::money(i.open_minor, &i.currency)}" }
                    }
                }
            }
        }
    }
}
