//! Activation: server address, login and PIN as the key user dictated them.
use dioxus::prelude::*;

use super::sync::failure_text;
use super::{Screen, use_screen};

#[component]
pub fn ActivationScreen() -> Element {
    let (ctx, t, nav, revision) = use_screen();
    let engine = ctx.engine.clone();
    let profile = engine.profile().ok().flatten().unwrap_or_default();
    let saved_server = Some(profile.server_url)
        .filter(|s| !s.is_empty())
        .or_else(|| engine.preference("server").ok().flatten())
        .unwrap_or_else(|| ctx.info.default_server.clone());
    let saved_login = profile.login;
    let mut server = use_signal(move || saved_server);
    let mut login = use_signal(move || saved_login);
    let mut pin = use_signal(String::new);
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);
    let net = ctx.net.clone();
    let activate = move |_| {
        let (s, l, p) = (
            server().trim().to_string(),
            login().trim().to_string(),
            pin().trim().to_string(),
        );
        if s.is_empty() || l.is_empty() || p.is_empty() {
            error.set(Some(t.s("activation.fill_all").to_string()));
            return;
        }
        if !(s.starts_with("http://") || s.starts_with("https://")) {
            error.set(Some(t.s("activation.bad_server").to_string()));
            return;
        }
        busy.set(true);
        error.set(None);
        let net = net.clone();
        let engine = engine.clone();
        // The request runs on the network thread; this task only waits for its answer.
        spawn(async move {
            let r = net.activate(s.clone(), l, p).await;
            busy.set(false);
            match r {
                Ok(()) => {
                    let _ = engine.set_preference("server", &s);
                    revision.bump();
                    net.sync_now();
                    nav.root(Screen::Today);
                }
                Err(f) => error.set(Some(failure_text(t, &f))),
            }
        });
    };
    rsx! {
        form { class: "activation", id: "activation-form", onsubmit: move |e| e.prevent_default(),
            p { class: "muted", "{t.s(\"activation.hint\")}" }
            label { r#for: "server", "{t.s(\"activation.server\")}" }
            input { id: "server", r#type: "url", value: "{server}", oninput: move |e| server.set(e.value()) }
            label { r#for: "login", "{t.s(\"activation.login\")}" }
            input { id: "login", autocomplete: "username", value: "{login}", oninput: move |e| login.set(e.value()) }
            label { r#for: "pin", "{t.s(\"activation.pin\")}" }
            input { id: "pin", inputmode: "numeric", autocomplete: "one-time-code", value: "{pin}", oninput: move |e| pin.set(e.value()) }
            if let Some(e) = error() {
                p { class: "error", id: "activation-error", role: "alert", "{e}" }
            }
            div { class: "row",
                button { id: "activate", class: "primary", r#type: "button", disabled: busy(), onclick: activate,
                    if busy() { "{t.s(\"activation.busy\")}" } else { "{t.s(\"activation.activate\")}" } }
            }
        }
    }
}
