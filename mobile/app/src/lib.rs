//! `fieldsync-app`: the sales agent's app. Dioxus screens over the `fieldsync-agent` engine.
//!
//! The engine, the location provider and the network worker are made once at start and handed
//! to the components through context ([`ui::AppCtx`]). With the default features the crate
//! builds without a webview, so `cargo test --workspace` renders every screen with
//! `dioxus_ssr`; the `desktop` feature adds the Linux/macOS/Windows window.

pub mod fmt;
pub mod i18n;
pub mod location;
pub mod net;
pub mod ui;

#[cfg(feature = "desktop")]
pub mod e2e;

use std::sync::Arc;
use std::time::Duration;

use fieldsync_agent::Engine;

pub use ui::{App, AppCtx, AppInfo, Screen, Shell, VisitTab};

/// The app's version, shown in settings and sent at activation.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds the context the app runs on: the engine at `db_path`, a location provider and the
/// network worker (syncing on its own every `auto_sync`, if given).
pub fn start(
    engine: Engine,
    location: Arc<dyn location::LocationProvider>,
    default_server: &str,
    auto_sync: Option<Duration>,
) -> AppCtx {
    let net = net::NetHandle::start(
        engine.clone(),
        net::NetConfig {
            auto_every: auto_sync,
            device_model: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            app_version: VERSION.to_string(),
        },
    );
    AppCtx {
        engine,
        location,
        net,
        info: AppInfo {
            version: VERSION.to_string(),
            default_server: default_server.to_string(),
        },
    }
}
