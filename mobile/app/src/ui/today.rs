//! Today: the day's route in order, visit states, distances, and a search over all outlets.
use dioxus::prelude::*;
use fieldsync_agent::{OutletView, VisitState};

use super::{ErrorLine, ItemText, PlanPanel, Screen, use_screen};
use crate::fmt;
use crate::location::distance_to;

#[component]
pub fn TodayScreen() -> Element {
    let (ctx, t, nav, revision) = use_screen();
    revision.watch();
    let mut query = use_signal(String::new);
    let here = ctx.location.last_known();
    let today = ctx.engine.today();
    let open_visit = ctx.engine.open_visit().ok().flatten();
    let distance = move |o: &OutletView| -> String {
        match (here.as_ref(), o.location) {
            (Some(h), Some(r)) => fmt::distance(distance_to(h, r)),
            _ => "—".to_string(),
        }
    };
    let q = query();
    let visit_banner = open_visit.and_then(|(visit, outlet)| {
        let name = ctx.engine.outlet(outlet).ok().flatten()?.name;
        Some(rsx! {
            div { class: "warn", id: "visit-in-progress",
                "{t.f(\"today.visit_in_progress\", &[(\"outlet\", name.clone())])} "
                button { id: "resume-visit", onclick: move |_| nav.go(Screen::Visit { visit, tab: super::VisitTab::Summary }),
                    "{t.s(\"today.resume\")}" }
            }
        })
    });
    let content = if !q.trim().is_empty() {
        match ctx.engine.search_outlets(&q, 50) {
            Err(e) => rsx! { ErrorLine { message: e.to_string() } },
            Ok(found) if found.is_empty() => {
                rsx! { p { class: "muted", id: "no-outlets", "{t.s(\"today.no_match\")}" } }
            }
            Ok(found) => rsx! {
                ul { class: "list", id: "outlet-results",
                    for o in found {
                        li { key: "{o.id}", class: "clickable", onclick: move |_| nav.go(Screen::Outlet(o.id)),
                            ItemText { line: o.name.clone(), under: format!("{} · {}", o.code, o.address) }
                            span { class: "muted", "{distance(&o)}" }
                        }
                    }
                }
            },
        }
    } else {
        match ctx.engine.route(&today) {
            Err(e) => rsx! { ErrorLine { message: e.to_string() } },
            Ok(stops) if stops.is_empty() => rsx! {
                div { id: "empty-route", class: "muted",
                    p { "{t.s(\"today.empty_route\")}" }
                    p { "{t.s(\"today.empty_route_hint\")}" }
                }
            },
            Ok(stops) => {
                let done = stops.iter().filter(|s| s.state == VisitState::Done).count();
                let total = stops.len();
                rsx! {
                    p { class: "muted", id: "route-progress", "{t.f(\"today.progress\", &[(\"done\", done.to_string()), (\"total\", total.to_string())])}" }
                    ol { class: "list", id: "route",
                        for (i, s) in stops.into_iter().enumerate() {
                            li { key: "{s.route_id}-{s.position}", id: "route-stop-{i}", class: "clickable",
                                onclick: move |_| nav.go(Screen::Outlet(s.outlet.id)),
                                span { class: "muted", "{s.position}." }
                                ItemText { line: s.outlet.name.clone(), under: s.outlet.address.clone() }
                                span { class: "muted", "{distance(&s.outlet)}" }
                                {state_badge(t, s.state)}
                            }
                        }
                    }
                }
            }
        }
    };
    rsx! {
        div { class: "today",
            {visit_banner}
            p { class: "muted", "{today}" }
            input { id: "outlet-search", r#type: "search", placeholder: t.s("today.search"),
                value: "{q}", oninput: move |e| query.set(e.value()) }
            {content}
            if q.trim().is_empty() {
                PlanPanel { outlet: 0 }
            }
        }
    }
}

pub(crate) fn state_badge(t: crate::i18n::T, state: VisitState) -> Element {
    let (class, key) = match state {
        VisitState::NotVisited => ("badge", "state.not_visited"),
        VisitState::InProgress => ("badge progress", "state.in_progress"),
        VisitState::Done => ("badge done", "state.done"),
    };
    rsx! { span { class, "{t.s(key)}" } }
}
