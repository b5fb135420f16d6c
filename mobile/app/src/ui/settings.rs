//! Settings: language, server, device id, app version, and who the phone is bound to.
use dioxus::prelude::*;

use super::{Nav, Screen, use_ctx, use_t};
use crate::i18n::Lang;

#[component]
pub fn SettingsScreen() -> Element {
    let ctx = use_ctx();
    let t = use_t();
    let nav: Nav = use_context();
    let mut lang: Signal<Lang> = use_context();
    let engine = ctx.engine.clone();
    let profile = engine.profile().ok().flatten();
    let device = engine
        .device_uid()
        .map(|u| u.to_string())
        .unwrap_or_default();
    let server = profile
        .as_ref()
        .map(|p| p.server_url.clone())
        .unwrap_or_default();
    let login = profile
        .as_ref()
        .map(|p| p.login.clone())
        .unwrap_or_default();
    let agent = profile
        .as_ref()
        .and_then(|p| p.mobile_user.as_ref())
        .map(|m| m.staff_name.clone())
        .unwrap_or_default();
    let position = profile
        .as_ref()
        .and_then(|p| p.position.as_ref())
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let distributor = profile
        .as_ref()
        .and_then(|p| p.distributor.as_ref())
        .map(|d| d.name.clone())
        .unwrap_or_default();
    let set_lang = move |e: FormEvent| {
        if let Some(l) = Lang::parse(&e.value()) {
            let _ = engine.set_preference("language", l.code());
            lang.set(l);
        }
    };
    let current = *lang.read();
    rsx! {
        div { class: "settings",
            label { r#for: "language", "{t.s(\"settings.language\")}" }
            select { id: "language", onchange: set_lang,
                for l in Lang::ALL {
                    option { key: "{l.code()}", value: "{l.code()}", selected: l == current, "{l.native_name()}" }
                }
            }
            dl {
                dt { "{t.s(\"settings.server\")}" } dd { id: "settings-server", "{server}" }
                dt { "{t.s(\"activation.login\")}" } dd { "{login}" }
                dt { "{t.s(\"settings.agent\")}" } dd { "{agent}" }
                dt { "{t.s(\"settings.position\")}" } dd { "{position}" }
                dt { "{t.s(\"settings.distributor\")}" } dd { "{distributor}" }
                dt { "{t.s(\"settings.device\")}" } dd { id: "device-id", "{device}" }
                dt { "{t.s(\"settings.version\")}" } dd { id: "app-version", "{ctx.info.version}" }
            }
            p { class: "muted", "{t.s(\"settings.server_hint\")}" }
            button { id: "activate-again", onclick: move |_| nav.root(Screen::Activation), "{t.s(\"settings.activate_again\")}" }
        }
    }
}
