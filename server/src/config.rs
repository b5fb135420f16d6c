//! Settings: defaults, then a TOML file, then `FIELDSYNC_*` environment variables, then flags.
use std::path::Path;

use serde::Deserialize;

/// How a setting's value is read from the environment (the TOML file gives it typed).
trait FromEnv: Sized {
    fn from_env(name: &str, v: String) -> anyhow::Result<Self>;
}

impl FromEnv for String {
    fn from_env(_: &str, v: String) -> anyhow::Result<Self> {
        Ok(v)
    }
}

impl FromEnv for Option<String> {
    fn from_env(_: &str, v: String) -> anyhow::Result<Self> {
        Ok(Some(v))
    }
}

/// A boolean environment value: 1/true/yes or 0/false/no.
impl FromEnv for bool {
    fn from_env(name: &str, v: String) -> anyhow::Result<Self> {
        match v.trim().to_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" | "" => Ok(false),
            other => anyhow::bail!("{name}={other:?}: use 1 or 0"),
        }
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

impl FromEnv for usize {
    fn from_env(name: &str, v: String) -> anyhow::Result<Self> {
        number(name, &v)
    }
}

impl FromEnv for u64 {
    fn from_env(name: &str, v: String) -> anyhow::Result<Self> {
        number(name, &v)
    }
}

/// A setting's value as `Debug` shows it: as it is, or through a function that hides a part.
macro_rules! shown {
    ($v:expr) => {
        &$v
    };
    ($v:expr, $hide:path) => {
        &$hide(&$v)
    };
}

/// Every setting once: its field (the TOML file's key too), type, default and environment
/// variable, and what hides it in `Debug` output. Generates [`Settings`], its `Debug` and
/// `Default`, the file's shape and how the file and the environment override it.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty = $default:expr, $env:literal $(, shown $hide:path)?;
    )*) => {
        /// Server settings.
        #[derive(Clone, PartialEq, Eq)]
        pub struct Settings {
            $($(#[doc = $doc])* pub $name: $ty,)*
        }

        impl std::fmt::Debug for Settings {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Settings")
                    $(.field(stringify!($name), shown!(self.$name $(, $hide)?)))*
                    .finish()
            }
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $($name: $default,)* }
            }
        }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FileSettings {
            $($name: Option<$ty>,)*
        }

        impl Settings {
            /// What the file sets replaces the value before.
            fn apply_file(&mut self, f: FileSettings) {
                $(if let Some(v) = f.$name {
                    self.$name = v;
                })*
            }

            /// What the environment sets replaces the value before.
            fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
                $(if let Some(v) = env($env) {
                    self.$name = FromEnv::from_env($env, v)?;
                })*
                Ok(())
            }
        }
    };
}

settings! {
    /// sqlx URL: `sqlite://PATH` or `postgres://...`.
    database_url: String = "sqlite://fieldsync.db".into(), "FIELDSYNC_DATABASE_URL", shown redact;
    /// Address to listen on.
    listen: String = "127.0.0.1:8080".into(), "FIELDSYNC_LISTEN";
    /// Directory of Leaflet's npm `dist` files, served to the back office's maps.
    leaflet_dir: Option<String> = None, "FIELDSYNC_LEAFLET_DIR";
    /// URL Leaflet is loaded from when no directory is set.
    leaflet_url: Option<String> = None, "FIELDSYNC_LEAFLET_URL";
    /// Map tile layer URL (`{z}/{x}/{y}`).
    tile_url: Option<String> = None, "FIELDSYNC_TILE_URL";
    /// Mark the back office's cookies `Secure` (the server is reached over TLS).
    secure_cookies: bool = false, "FIELDSYNC_SECURE_COOKIES";
    /// Let webhooks post to private, loopback and link-local addresses.
    webhook_allow_private: bool = false, "FIELDSYNC_WEBHOOK_ALLOW_PRIVATE";
    /// Answer a device's stats call with the field-truth signals of its own visits (the
    /// field simulator's truth score needs it; off in production so agents do not learn
    /// what was flagged).
    device_signals: bool = false, "FIELDSYNC_DEVICE_SIGNALS";
    /// Open connections at most.
    max_connections: usize = default_limits().max_connections, "FIELDSYNC_MAX_CONNECTIONS";
    /// Seconds a request head may take to arrive (and an idle connection stays open).
    header_timeout_secs: u64 = default_limits().header_timeout.as_secs(), "FIELDSYNC_HEADER_TIMEOUT_SECS";
    /// Seconds reading a request body and answering may take.
    request_timeout_secs: u64 = default_limits().request_timeout.as_secs(), "FIELDSYNC_REQUEST_TIMEOUT_SECS";
    /// The address key users reach the back office at, for links in mail
    /// (`https://fieldsync.example.com`); the listen address when not set.
    public_url: Option<String> = None, "FIELDSYNC_PUBLIC_URL";
    /// The SMTP server mail is sent through; no mail is sent when not set.
    smtp_host: Option<String> = None, "FIELDSYNC_SMTP_HOST";
    /// The SMTP server's port.
    smtp_port: u64 = 587, "FIELDSYNC_SMTP_PORT";
    /// How the SMTP connection is secured: `starttls` (required), `tls` (from the first
    /// byte, port 465) or `none` (a relay on a trusted network only).
    smtp_security: String = "starttls".into(), "FIELDSYNC_SMTP_SECURITY";
    /// SMTP login, if the server asks for one.
    smtp_user: Option<String> = None, "FIELDSYNC_SMTP_USER";
    /// SMTP password.
    smtp_password: Option<String> = None, "FIELDSYNC_SMTP_PASSWORD", shown hide_secret;
    /// The sender of the mail (`fieldsync <noreply@example.com>`).
    mail_from: String = "fieldsync <noreply@localhost.localdomain>".into(), "FIELDSYNC_MAIL_FROM";
    /// Seconds requests in flight may take to finish after SIGTERM.
    drain_timeout_secs: u64 = default_limits().drain_timeout.as_secs(), "FIELDSYNC_DRAIN_TIMEOUT_SECS";
}

/// The listener's bounds when nothing is configured.
fn default_limits() -> crate::http::ServeLimits {
    crate::http::ServeLimits::default()
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

/// Shows whether a secret is set, never the secret.
fn hide_secret(v: &Option<String>) -> &'static str {
    if v.is_some() { "***" } else { "None" }
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
            s.apply_file(f);
        }
        s.apply_env(&env)?;
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

    /// The mail settings, when an SMTP host is set.
    pub fn mail(&self) -> anyhow::Result<Option<crate::mail::MailSettings>> {
        let Some(host) = self.smtp_host.clone().filter(|h| !h.trim().is_empty()) else {
            return Ok(None);
        };
        let security = crate::mail::Security::parse(&self.smtp_security).ok_or_else(|| {
            anyhow::anyhow!(
                "smtp_security={:?}: use starttls, tls or none",
                self.smtp_security
            )
        })?;
        let port = u16::try_from(self.smtp_port)
            .map_err(|_| anyhow::anyhow!("smtp_port={}: not a port", self.smtp_port))?;
        Ok(Some(crate::mail::MailSettings {
            host,
            port,
            security,
            user: self.smtp_user.clone(),
            password: self.smtp_password.clone(),
            from: self.mail_from.clone(),
        }))
    }

    /// The address links in mail point at.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
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

    /// Overrides that name a config file holding `text`; the file lives as long as the
    /// directory returned with them.
    fn config_file(text: &str) -> (tempfile::TempDir, Overrides) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fieldsync.toml");
        std::fs::write(&path, text).unwrap();
        let flags = Overrides {
            config_file: Some(path.display().to_string()),
            ..Default::default()
        };
        (dir, flags)
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let (_dir, flags) =
            config_file("database_url = \"sqlite://from-file.db\"\nlisten = \"0.0.0.0:1\"\n");
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
        let (_dir, flags) = config_file("databse_url = \"x\"\n");
        assert!(Settings::load(&flags, |_| None).is_err());
        let s = Settings {
            database_url: "postgres://u:hunter2@db/x".into(),
            listen: "x".into(),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
