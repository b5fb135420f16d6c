//! Settings: language, server, device id, app version, and who the phone is bound to.
use dioxus::prelude::*;

use super::{Screen, use_screen};
use crate::i18n::Lang;

#[component]
pub fn SettingsScreen() -> Element {
    let (ctx, t, nav, _) = use_screen();
    let mut lang: Signal<Lang> = use_context();
    let engine = ctx.engine.clone();
    let profile = engine.profile().ok().flatten().unwrap_or_default();
    let device = engine
        .device_uid()
        .map(|u| u.to_string())
        .unwrap_or_default();
    let (server, login) = (profile.server_url, profile.login);
    let agent = profile
        .mobile_user
        .map(|m| m.staff_name)
        .unwrap_or_default();
    let position = profile.position.map(|p| p.name).unwrap_or_default();
    let distributor = profile.distributor.map(|d| d.name).unwrap_or_default();
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
