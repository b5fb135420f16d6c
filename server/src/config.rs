//! Settings: defaults, then a TOML file, then `FIELDSYNC_*` environment variables, then flags.
use std::path::Path;

use serde::Deserialize;

/// Server settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// sqlx URL: `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// Address to listen on.
    pub listen: String,
    /// Directory of Leaflet's npm `dist` files, served to the back office's maps.
    pub leaflet_dir: Option<String>,
    /// URL Leaflet is loaded from when no directory is set.
    pub leaflet_url: Option<String>,
    /// Map tile layer URL (`{z}/{x}/{y}`).
    pub tile_url: Option<String>,
    /// Mark the back office's cookies `Secure` (the server is reached over TLS).
    pub secure_cookies: bool,
    /// Let webhooks post to private, loopback and link-local addresses.
    pub webhook_allow_private: bool,
    /// Open connections at most.
    pub max_connections: usize,
    /// Seconds a request head may take to arrive (and an idle connection stays open).
    pub header_timeout_secs: u64,
    /// Seconds reading a request body and answering may take.
    pub request_timeout_secs: u64,
    /// Seconds requests in flight may take to finish after SIGTERM.
    pub drain_timeout_secs: u64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact(&self.database_url))
            .field("listen", &self.listen)
            .field("leaflet_dir", &self.leaflet_dir)
            .field("leaflet_url", &self.leaflet_url)
            .field("tile_url", &self.tile_url)
            .field("secure_cookies", &self.secure_cookies)
            .field("webhook_allow_private", &self.webhook_allow_private)
            .field("max_connections", &self.max_connections)
            .field("header_timeout_secs", &self.header_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("drain_timeout_secs", &self.drain_timeout_secs)
            .finish()
    }
}

/// Hides a password in a URL (`postgres://user:secret@host` -> `postgres://user:***@host`).
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl Default for Settings {
    fn default() -> Self {
        let limits = crate::http::ServeLimits::default();
        Settings {
            database_url: "sqlite://fieldsync.db".into(),
            listen: "127.0.0.1:8080".into(),
            leaflet_dir: None,
            leaflet_url: None,
            tile_url: None,
            secure_cookies: false,
            webhook_allow_private: false,
            max_connections: limits.max_connections,
            header_timeout_secs: limits.header_timeout.as_secs(),
            request_timeout_secs: limits.request_timeout.as_secs(),
            drain_timeout_secs: limits.drain_timeout.as_secs(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    listen: Option<String>,
    leaflet_dir: Option<String>,
    leaflet_url: Option<String>,
    tile_url: Option<String>,
    secure_cookies: Option<bool>,
    webhook_allow_private: Option<bool>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    drain_timeout_secs: Option<u64>,
}

/// A boolean environment value: 1/true/yes or 0/false/no.
fn flag(name: &str, v: &str) -> anyhow::Result<bool> {
    match v.trim().to_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        other => anyhow::bail!("{name}={other:?}: use 1 or 0"),
    }
}

/// A positive number from the environment.
fn number<N: std::str::FromStr + PartialOrd + Default>(name: &str, v: &str) -> anyhow::Result<N> {
    v.trim()
        .parse::<N>()
        .ok()
        .filter(|n| *n > N::default())
        .ok_or_else(|| anyhow::anyhow!("{name}={v:?}: expected a positive number"))
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<String>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
}

impl Settings {
    /// Resolves settings from all sources; `env` is passed in so tests need no globals.
    pub fn load(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        let file = flags
            .config_file
            .clone()
            .or_else(|| env("FIELDSYNC_CONFIG"));
        if let Some(path) = file {
            let text = std::fs::read_to_string(Path::new(&path))
                .map_err(|e| anyhow::anyhow!("cannot read config file {path}: {e}"))?;
            let f: FileSettings =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {path}: {e}"))?;
            if let Some(v) = f.database_url {
                s.database_url = v;
            }
            if let Some(v) = f.listen {
                s.listen = v;
            }
            s.leaflet_dir = f.leaflet_dir.or(s.leaflet_dir);
            s.leaflet_url = f.leaflet_url.or(s.leaflet_url);
            s.tile_url = f.tile_url.or(s.tile_url);
            s.secure_cookies = f.secure_cookies.unwrap_or(s.secure_cookies);
            s.webhook_allow_private = f.webhook_allow_private.unwrap_or(s.webhook_allow_private);
            s.max_connections = f.max_connections.unwrap_or(s.max_connections);
            s.header_timeout_secs = f.header_timeout_secs.unwrap_or(s.header_timeout_secs);
            s.request_timeout_secs = f.request_timeout_secs.unwrap_or(s.request_timeout_secs);
            s.drain_timeout_secs = f.drain_timeout_secs.unwrap_or(s.drain_timeout_secs);
        }
        if let Some(v) = env("FIELDSYNC_DATABASE_URL") {
            s.database_url = v;
        }
        if let Some(v) = env("FIELDSYNC_LISTEN") {
            s.listen = v;
        }
        s.leaflet_dir = env("FIELDSYNC_LEAFLET_DIR").or(s.leaflet_dir);
        s.leaflet_url = env("FIELDSYNC_LEAFLET_URL").or(s.leaflet_url);
        s.tile_url = env("FIELDSYNC_TILE_URL").or(s.tile_url);
        if let Some(v) = env("FIELDSYNC_SECURE_COOKIES") {
            s.secure_cookies = flag("FIELDSYNC_SECURE_COOKIES", &v)?;
        }
        if let Some(v) = env("FIELDSYNC_WEBHOOK_ALLOW_PRIVATE") {
            s.webhook_allow_private = flag("FIELDSYNC_WEBHOOK_ALLOW_PRIVATE", &v)?;
        }
        if let Some(v) = env("FIELDSYNC_MAX_CONNECTIONS") {
            s.max_connections = number("FIELDSYNC_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = env("FIELDSYNC_HEADER_TIMEOUT_SECS") {
            s.header_timeout_secs = number("FIELDSYNC_HEADER_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = env("FIELDSYNC_REQUEST_TIMEOUT_SECS") {
            s.request_timeout_secs = number("FIELDSYNC_REQUEST_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = env("FIELDSYNC_DRAIN_TIMEOUT_SECS") {
            s.drain_timeout_secs = number("FIELDSYNC_DRAIN_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = &flags.database_url {
            s.database_url = v.clone();
        }
        if let Some(v) = &flags.listen {
            s.listen = v.clone();
        }
        Ok(s)
    }
}

impl Settings {
    /// The back office's settings: defaults overridden by what was configured.
    pub fn web(&self) -> crate::web::WebSettings {
        let mut w = crate::web::WebSettings::default();
        if let Some(d) = &self.leaflet_dir {
            w.leaflet_dir = Some(d.into());
        }
        if let Some(u) = &self.leaflet_url {
            w.leaflet_url = u.clone();
            if self.leaflet_dir.is_none() {
                w.leaflet_dir = None;
            }
        }
        if let Some(u) = &self.tile_url {
            w.tile_url = u.clone();
        }
        w.secure_cookies = self.secure_cookies;
        w
    }

    /// The listener's bounds.
    pub fn limits(&self) -> crate::http::ServeLimits {
        use std::time::Duration;
        crate::http::ServeLimits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fieldsync.toml");
        std::fs::write(
            &path,
            "database_url = \"sqlite://from-file.db\"\nlisten = \"0.0.0.0:1\"\n",
        )
        .unwrap();
        let flags = Overrides {
            config_file: Some(path.display().to_string()),
            ..Default::default()
        };
        let env = |k: &str| (k == "FIELDSYNC_LISTEN").then(|| "127.0.0.1:2".to_string());
        let s = Settings::load(&flags, env).unwrap();
        assert_eq!(s.database_url, "sqlite://from-file.db");
        assert_eq!(s.listen, "127.0.0.1:2");
        let flags = Overrides {
            listen: Some("127.0.0.1:3".into()),
            ..flags
        };
        assert_eq!(Settings::load(&flags, env).unwrap().listen, "127.0.0.1:3");
        assert_eq!(
            Settings::load(&Overrides::default(), |_| None).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error_and_passwords_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "databse_url = \"x\"\n").unwrap();
        let flags = Overrides {
            config_file: Some(path.display().to_string()),
            ..Default::default()
        };
        assert!(Settings::load(&flags, |_| None).is_err());
        let s = Settings {
            database_url: "postgres://u:hunter2@db/x".into(),
            listen: "x".into(),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
