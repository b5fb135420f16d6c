//! The screens. The engine, the location provider and the network worker reach components
//! through [`AppCtx`] in the context; no component opens anything itself.
use std::sync::Arc;

use dioxus::prelude::*;
use fieldsync_agent::{Engine, EngineError};
use uuid::Uuid;

use crate::i18n::{Lang, T};
use crate::location::LocationProvider;
use crate::net::{NetHandle, NetStatus};

mod activation;
mod card;
mod outlet;
mod questionnaire;
mod settings;
mod shop;
mod sync;
mod today;
mod visit;

pub use activation::ActivationScreen;
pub use outlet::OutletScreen;
pub use questionnaire::{DistributionTab, QuestionnaireTab};
pub use settings::SettingsScreen;
pub use shop::{ClaimTab, ClaimsPanel, PlanPanel};
pub use sync::{SyncBanner, SyncScreen};
pub use today::TodayScreen;
pub use visit::{OrderTab, VisitScreen};

/// What the app was started with; handed to the root as context.
#[derive(Clone)]
pub struct AppCtx {
    pub engine: Engine,
    pub location: Arc<dyn LocationProvider>,
    pub net: NetHandle,
    pub info: AppInfo,
}

/// Facts about this build and installation.
#[derive(Debug, Clone, PartialEq)]
pub struct AppInfo {
    pub version: String,
    /// Pre-filled on the activation screen when nothing was saved.
    pub default_server: String,
}

/// Where the agent is in the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Activation,
    Today,
    Outlet(i64),
    Visit { visit: Uuid, tab: VisitTab },
    Sync,
    Settings,
}

/// The tabs inside a visit.
#[derive(Debug, Clone, PartialEq)]
pub enum VisitTab {
    Summary,
    /// The order editor, opened on a saved draft or empty.
    Order {
        draft: Option<Uuid>,
    },
    Distribution,
    /// The questionnaire list, or one questionnaire's form (`validate`: show what is missing
    /// right away, as after a refused save).
    Questionnaire {
        id: Option<i64>,
        validate: bool,
    },
    /// A claim on delivered goods: a new one, or a saved one (a draft is edited here).
    Claim {
        claim: Option<Uuid>,
    },
}

/// The navigation stack; the last screen is shown.
#[derive(Clone, Copy)]
pub struct Nav(pub Signal<Vec<Screen>>);

impl Nav {
    pub fn current(&self) -> Screen {
        self.0.read().last().cloned().unwrap_or(Screen::Today)
    }
    pub fn go(mut self, s: Screen) {
        self.0.write().push(s);
    }
    /// Replaces the current screen (tabs, a started visit).
    pub fn replace(mut self, s: Screen) {
        let mut stack = self.0.write();
        stack.pop();
        stack.push(s);
    }
    /// Starts over at a root screen.
    pub fn root(mut self, s: Screen) {
        self.0.set(vec![s]);
    }
    pub fn back(mut self) {
        let mut stack = self.0.write();
        if stack.len() > 1 {
            stack.pop();
        }
    }
    pub fn can_go_back(&self) -> bool {
        self.0.read().len() > 1
    }
}

/// Bumped after every local write and every finished sync; screens read it so they re-query.
#[derive(Clone, Copy)]
pub struct Revision(pub Signal<u64>);

impl Revision {
    pub fn bump(mut self) {
        *self.0.write() += 1;
    }
    /// Subscribes the calling component.
    pub fn watch(&self) -> u64 {
        *self.0.read()
    }
}

/// The current language, for components.
pub fn use_t() -> T {
    let lang: Signal<Lang> = use_context();
    T(*lang.read())
}

pub fn use_ctx() -> AppCtx {
    use_context()
}

/// What a screen takes from the context: the app, the translator, the navigation and the
/// revision (screens that show stored data call [`Revision::watch`] on it).
pub fn use_screen() -> (AppCtx, T, Nav, Revision) {
    (use_ctx(), use_t(), use_context(), use_context())
}

/// The record a screen is about, or the line to show instead: `unknown` when there is no such
/// record, the error when the local store failed.
pub fn found<V>(record: Result<Option<V>, EngineError>, unknown: &str) -> Result<V, Element> {
    match record {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(rsx! { ErrorLine { message: unknown.to_string() } }),
        Err(e) => Err(rsx! { ErrorLine { message: e.to_string() } }),
    }
}

/// The currency of the distributor the phone works for ("" before the first pull).
pub fn currency(engine: &Engine) -> String {
    engine
        .distributor()
        .ok()
        .flatten()
        .map(|d| d.currency)
        .unwrap_or_default()
}

/// The root of the real app: activation first, then today's route.
#[component]
pub fn App() -> Element {
    let ctx = use_ctx();
    let first = if ctx.engine.is_activated().unwrap_or(false) {
        Screen::Today
    } else {
        Screen::Activation
    };
    rsx! { Shell { initial: first } }
}

/// The frame around every screen: title bar, sync banner, the screen, the bottom bar.
#[component]
pub fn Shell(initial: Screen) -> Element {
    let ctx = use_ctx();
    let engine = ctx.engine.clone();
    let lang = use_context_provider(|| {
        Signal::new(
            engine
                .preference("language")
                .ok()
                .flatten()
                .and_then(|c| Lang::parse(&c))
                .unwrap_or_default(),
        )
    });
    let nav = use_context_provider(|| Nav(Signal::new(vec![initial.clone()])));
    let revision = use_context_provider(|| Revision(Signal::new(0)));
    let net = ctx.net.clone();
    let mut status = use_context_provider(|| Signal::new(net.status()));
    // Follow the network worker: its status, and fresh data after each sync.
    let net = ctx.net.clone();
    use_future(move || {
        let mut rx = net.subscribe();
        async move {
            let mut seen = rx.borrow().finished;
            loop {
                let now = rx.borrow_and_update().clone();
                let finished = now.finished;
                status.set(now);
                if finished != seen {
                    seen = finished;
                    revision.bump();
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    });
    let t = T(*lang.read());
    let screen = nav.current();
    let activated = !matches!(screen, Screen::Activation);
    let title = match &screen {
        Screen::Activation => t.s("activation.title"),
        Screen::Today => t.s("today.title"),
        Screen::Outlet(_) => t.s("outlet.title"),
        Screen::Visit { .. } => t.s("visit.title"),
        Screen::Sync => t.s("sync.title"),
        Screen::Settings => t.s("settings.title"),
    };
    let body = match screen.clone() {
        Screen::Activation => rsx! { ActivationScreen {} },
        Screen::Today => rsx! { TodayScreen {} },
        Screen::Outlet(id) => rsx! { OutletScreen { id } },
        Screen::Visit { visit, tab } => rsx! { VisitScreen { visit, tab } },
        Screen::Sync => rsx! { SyncScreen {} },
        Screen::Settings => rsx! { SettingsScreen {} },
    };
    let tab_class = |on: bool| if on { "tab on" } else { "tab" };
    rsx! {
        style { {CSS} }
        div { class: "app", lang: t.0.code(),
            header { class: "bar",
                if nav.can_go_back() {
                    button { id: "back", class: "back", onclick: move |_| nav.back(), "‹ {t.s(\"common.back\")}" }
                }
                h1 { id: "screen-title", "{title}" }
            }
            if activated {
                SyncBanner {}
            }
            main { class: "body", {body} }
            if activated {
                nav { class: "tabs",
                    button { id: "nav-today", class: tab_class(matches!(screen, Screen::Today | Screen::Outlet(_) | Screen::Visit { .. })),
                        onclick: move |_| nav.root(Screen::Today), "{t.s(\"today.title\")}" }
                    button { id: "nav-sync", class: tab_class(screen == Screen::Sync),
                        onclick: move |_| nav.root(Screen::Sync), "{t.s(\"sync.title\")}" }
                    button { id: "nav-settings", class: tab_class(screen == Screen::Settings),
                        onclick: move |_| nav.root(Screen::Settings), "{t.s(\"settings.title\")}" }
                }
            }
        }
    }
}

/// The network status, for components.
pub fn use_net_status() -> Signal<NetStatus> {
    use_context()
}

/// A local error worth showing instead of the screen's content.
#[component]
pub fn ErrorLine(message: String) -> Element {
    rsx! { p { class: "error", role: "alert", "{message}" } }
}

/// A titled list; `empty`, when given, is said under the title instead of items.
#[component]
pub fn TitledList(
    title: &'static str,
    id: &'static str,
    empty: Option<&'static str>,
    children: Element,
) -> Element {
    rsx! {
        h3 { "{title}" }
        if let Some(empty) = empty {
            p { class: "muted", "{empty}" }
        }
        ul { class: "list", id, {children} }
    }
}

/// The text of a list item: its line, and a muted line under it.
#[component]
pub fn ItemText(line: String, under: String) -> Element {
    rsx! {
        div { class: "grow",
            div { "{line}" }
            div { class: "muted", "{under}" }
        }
    }
}

/// Mobile-first styles: big touch targets, readable in sunlight.
const CSS: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f3f4f6; color: #111827; }
.app { max-width: 560px; margin: 0 auto; min-height: 100vh; display: flex; flex-direction: column; background: #fff; }
.bar { display: flex; align-items: center; gap: 8px; padding: 10px 12px; background: #1d4ed8; color: #fff; }
.bar h1 { font-size: 18px; margin: 0; flex: 1; }
.bar .back { background: transparent; color: #fff; border: 1px solid rgba(255,255,255,.5); }
.banner { padding: 6px 12px; font-size: 13px; background: #eef2ff; display: flex; flex-wrap: wrap; gap: 10px; }
.banner .refused { color: #b91c1c; font-weight: 600; }
.banner.offline { background: #fef3c7; }
.body { flex: 1; padding: 12px; overflow-y: auto; }
.progress { height: 8px; background: #e5e7eb; border-radius: 4px; overflow: hidden; margin: 4px 0; }
.progress .bar-fill { height: 100%; background: #16a34a; }
.percent { min-width: 48px; text-align: right; }
.debt-totals { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; }
.debt-totals dd { margin: 0; text-align: right; font-weight: 600; }
.overdue, dd.overdue { color: #b91c1c; }
li.overdue { border-left: 4px solid #b91c1c; }
table.fate { width: 100%; border-collapse: collapse; font-size: 13px; margin-top: 4px; }
table.fate th, table.fate td { text-align: right; padding: 2px 4px; border-bottom: 1px solid #e5e7eb; }
table.fate th:first-child, table.fate td:first-child { text-align: left; }
table.fate tr.differs td { color: #b45309; font-weight: 600; }
.claim-line select { max-width: 45%; }
.tabs { display: flex; border-top: 1px solid #e5e7eb; }
.tabs .tab { flex: 1; border: 0; border-radius: 0; padding: 14px 4px; background: #fff; font-size: 15px; }
.tabs .tab.on { color: #1d4ed8; font-weight: 700; border-top: 3px solid #1d4ed8; }
button { font-size: 15px; padding: 10px 14px; border-radius: 8px; border: 1px solid #cbd5e1; background: #f8fafc; cursor: pointer; }
button.primary { background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
button.danger { background: #fff; color: #b91c1c; border-color: #fca5a5; }
button:disabled { opacity: .5; cursor: default; }
input, select, textarea { font-size: 16px; padding: 9px; border: 1px solid #cbd5e1; border-radius: 8px; width: 100%; }
input[type=checkbox], input[type=radio] { width: auto; }
label { display: block; margin: 10px 0 4px; font-weight: 600; font-size: 14px; }
.list { list-style: none; padding: 0; margin: 0; }
.list li { border-bottom: 1px solid #e5e7eb; padding: 10px 4px; display: flex; gap: 10px; align-items: center; }
.list li.clickable { cursor: pointer; }
.grow { flex: 1; min-width: 0; }
.muted { color: #6b7280; font-size: 13px; }
.badge { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #e5e7eb; white-space: nowrap; }
.badge.done { background: #dcfce7; color: #166534; }
.badge.progress { background: #dbeafe; color: #1e40af; }
.badge.refused, .badge.rejected, .badge.cancelled { background: #fee2e2; color: #991b1b; }
.warn { background: #fef3c7; border: 1px solid #f59e0b; padding: 8px 10px; border-radius: 8px; margin: 8px 0; }
.error { background: #fee2e2; border: 1px solid #ef4444; padding: 8px 10px; border-radius: 8px; margin: 8px 0; }
.ok { background: #dcfce7; border: 1px solid #22c55e; padding: 8px 10px; border-radius: 8px; margin: 8px 0; }
.row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
.subtabs { display: flex; gap: 4px; margin-bottom: 10px; flex-wrap: wrap; }
.subtabs button.on { background: #1d4ed8; color: #fff; }
.qty { width: 84px; text-align: right; }
.total { font-size: 18px; font-weight: 700; text-align: right; margin: 10px 0; }
.field-error { color: #b91c1c; font-size: 13px; margin-top: 4px; }
.progress-bar { height: 6px; background: #e5e7eb; border-radius: 3px; overflow: hidden; }
.progress-bar div { height: 100%; background: #1d4ed8; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 8px 0; }
dt { color: #6b7280; }
dd { margin: 0; word-break: break-word; }
.card { border-top: 1px solid #e5e7eb; margin-top: 12px; }
.conflict { background: #fff7ed; border-left: 3px solid #f97316; color: #9a3412; font-size: 13px; padding: 2px 6px; margin-top: 2px; }
.hours { border-collapse: collapse; width: 100%; }
.hours th, .hours td { text-align: left; padding: 4px; vertical-align: top; font-size: 14px; }
.notes { white-space: pre-wrap; }
"#;
