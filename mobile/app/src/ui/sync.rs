//! The sync banner on every screen and the sync screen: manual sync, progress, what became of
//! each item, refused items with their reason.
use dioxus::prelude::*;
use fieldsync_agent::{OutboxStatus, SyncPhase};

use super::{AppCtx, ItemText, Nav, Screen, TitledList, use_net_status, use_screen};
use crate::fmt;
use crate::i18n::T;
use crate::net::{Failure, NetStatus};

fn progress_text(t: T, s: &NetStatus) -> String {
    match s.progress.map(|p| p.phase) {
        Some(SyncPhase::Pushing { done, total }) => t.f(
            "sync.pushing",
            &[("done", done.to_string()), ("total", total.to_string())],
        ),
        Some(SyncPhase::Pulling { pages, changes }) => t.f(
            "sync.pulling",
            &[
                ("pages", pages.to_string()),
                ("changes", changes.to_string()),
            ],
        ),
        Some(SyncPhase::Finishing) => t.s("sync.finishing").to_string(),
        Some(SyncPhase::Reconciling) | None => t.s("sync.connecting").to_string(),
    }
}

pub(crate) fn failure_text(t: T, f: &Failure) -> String {
    match f {
        Failure::Offline(_) => t.s("error.offline").to_string(),
        Failure::NeedsActivation => t.s("error.needs_activation").to_string(),
        Failure::Pin {
            code,
            retry_after_ms,
        } => t.pin_error(*code, *retry_after_ms),
        Failure::DistributorInactive => t.s("error.distributor_inactive").to_string(),
        Failure::Refused(m) => t.f("error.refused", &[("detail", m.clone())]),
        Failure::Local(m) => t.f("error.local", &[("detail", m.clone())]),
    }
}

/// What the banner and the sync screen both start from: the context, the worker's status
/// and the outbox, read again after every local write and every sync.
fn use_sync_view() -> (AppCtx, T, Nav, NetStatus, OutboxStatus) {
    let (ctx, t, nav, revision) = use_screen();
    revision.watch();
    let s = use_net_status().read().clone();
    let outbox = ctx.engine.outbox_status().unwrap_or_default();
    (ctx, t, nav, s, outbox)
}

#[component]
pub fn SyncBanner() -> Element {
    let (ctx, t, nav, s, outbox) = use_sync_view();
    let last = outbox
        .last_sync_ms
        .map(|ms| fmt::date_time(ctx.engine.local_ms(ms)))
        .unwrap_or_else(|| t.s("sync.never").to_string());
    let offline = s.online == Some(false);
    let needs_activation = matches!(
        s.last.as_ref().map(|l| &l.result),
        Some(Err(Failure::NeedsActivation))
    );
    rsx! {
        div { class: if offline { "banner offline" } else { "banner" }, id: "sync-banner", onclick: move |_| nav.root(Screen::Sync),
            span { id: "banner-waiting", "{t.f(\"sync.waiting\", &[(\"n\", outbox.pending.to_string())])}" }
            span { id: "banner-last", "{t.f(\"sync.last\", &[(\"when\", last.clone())])}" }
            if !outbox.refused.is_empty() {
                span { class: "refused", id: "banner-refused", "{t.f(\"sync.refused_count\", &[(\"n\", outbox.refused.len().to_string())])}" }
            }
            if s.running {
                span { id: "banner-running", "⟳ {progress_text(t, &s)}" }
            } else if offline {
                span { "{t.s(\"sync.offline\")}" }
            }
            if needs_activation {
                span { class: "refused", "{t.s(\"error.needs_activation\")}" }
            }
        }
    }
}

#[component]
pub fn SyncScreen() -> Element {
    let (ctx, t, nav, s, outbox) = use_sync_view();
    let items = ctx.engine.outbox_items(200).unwrap_or_default();
    let net = ctx.net.clone();
    let (done, total) = match s.progress.map(|p| p.phase) {
        Some(SyncPhase::Pushing { done, total }) if total > 0 => (done, total),
        _ => (0, 0),
    };
    rsx! {
        div { class: "sync",
            div { class: "row",
                button { id: "sync-now", class: "primary", disabled: s.running, onclick: move |_| net.sync_now(),
                    if s.running { "{t.s(\"sync.running\")}" } else { "{t.s(\"sync.now\")}" } }
                span { class: "muted", "{t.f(\"sync.waiting\", &[(\"n\", outbox.pending.to_string())])}" }
            }
            if s.running {
                p { id: "sync-progress", "{progress_text(t, &s)}" }
                if total > 0 {
                    div { class: "progress-bar", div { style: "width: {done * 100 / total}%" } }
                }
            }
            if let Some(last) = s.last.clone() {
                match last.result {
                    Ok(r) => rsx! {
                        div { class: "ok", id: "sync-result",
                            "{t.f(\"sync.done\", &[(\"when\", fmt::time(ctx.engine.local_ms(last.finished_ms))), (\"sent\", r.acknowledged.to_string()), (\"refused\", r.refused.to_string()), (\"received\", r.pulled.to_string())])}"
                            div { class: "muted", "{t.f(\"sync.bytes\", &[(\"up\", (r.bytes_up / 1024).to_string()), (\"down\", (r.bytes_down / 1024).to_string())])}" }
                        }
                    },
                    Err(f) => rsx! {
                        div { class: "error", id: "sync-result", role: "alert",
                            "{failure_text(t, &f)}"
                            if f == Failure::NeedsActivation {
                                " "
                                button { id: "reactivate", onclick: move |_| nav.root(Screen::Activation), "{t.s(\"settings.activate_again\")}" }
                            }
                        }
                    },
                }
            }
            if !outbox.refused.is_empty() {
                TitledList { title: t.s("sync.refused_title"), id: "refused-items",
                    for r in outbox.refused.clone() {
                        li { key: "r{r.seq}",
                            div { class: "grow",
                                div { "{t.kind(&r.kind)} · {fmt::date_time(ctx.engine.local_ms(r.created_ms))}" }
                                div { class: "field-error", "{t.refusal(&r.code)}" }
                                if !r.reason.is_empty() { div { class: "muted", "{r.reason}" } }
                            }
                            span { class: "badge refused", "{t.s(\"item.refused\")}" }
                        }
                    }
                }
            }
            TitledList { title: t.s("sync.items"), id: "outbox-items", empty: items.is_empty().then(|| t.s("sync.no_items")),
                for i in items {
                    li { key: "{i.seq}",
                        ItemText { line: t.kind(&i.kind), under: fmt::date_time(ctx.engine.local_ms(i.created_ms)) }
                        match i.state.as_str() {
                            "acked" => rsx! { span { class: "badge done", "{t.s(\"item.sent\")}" } },
                            "refused" => rsx! { span { class: "badge refused", title: "{i.reason}", "{t.s(\"item.refused\")}" } },
                            _ => rsx! { span { class: "badge", "{t.s(\"item.waiting\")}" } },
                        }
                    }
                }
            }
        }
    }
}
