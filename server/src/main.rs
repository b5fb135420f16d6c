//! `fieldsync-server`: serve the sync API, seed worlds, manage PINs.
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldsync_server::config::{Overrides, Settings, redact};
use fieldsync_server::seed::{self, WorldSpec};
use fieldsync_server::store::keyusers::Role;
use fieldsync_server::store::{StoreError, now_ms};
use fieldsync_server::{AppState, Store};

#[derive(Parser)]
#[command(name = "fieldsync-server", version, about = "The fieldsync server")]
struct Cli {
    /// TOML config file (also FIELDSYNC_CONFIG).
    #[arg(long, global = true)]
    config: Option<String>,
    /// sqlx database URL: sqlite://PATH or postgres://... (also FIELDSYNC_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Address to listen on (also FIELDSYNC_LISTEN).
    #[arg(long, global = true)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API. The database is created and migrated on start.
    Serve {
        /// On an empty database, load a small demo world first and print its PINs.
        #[arg(long)]
        demo: bool,
    },
    /// Generate a synthetic world and write `login,pin` lines for simulators.
    Seed {
        #[arg(long, default_value_t = 10)]
        agents: usize,
        #[arg(long, default_value_t = 1000)]
        outlets: usize,
        #[arg(long, default_value_t = 2000)]
        products: usize,
        /// Distributor code of the new world (must be new in this database).
        #[arg(long, default_value = "SIM")]
        distributor: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Agents sharing one territory (its outlets and their shared cards).
        #[arg(long, default_value_t = 1)]
        agents_per_territory: usize,
        /// Open invoices per outlet (the first of each overdue).
        #[arg(long, default_value_t = 0)]
        invoices_per_outlet: usize,
        /// This month's purchase plan for every outlet and position.
        #[arg(long)]
        plans: bool,
        #[arg(long)]
        pins_out: PathBuf,
    },
    /// Generate a new PIN for a mobile user; the device bound before is unbound.
    Pin { login: String },
    /// Give the database a new epoch (after restoring a backup): devices re-sync fully.
    RotateEpoch,
    /// Apply migrations and exit.
    Migrate,
    /// Back-office logins.
    KeyUser {
        #[command(subcommand)]
        action: KeyUserAction,
    },
    /// API keys of distributors' systems.
    ApiKey {
        #[command(subcommand)]
        action: ApiKeyAction,
    },
    /// Webhook push of new orders to a distributor's system.
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
}

#[derive(Subcommand)]
enum WebhookAction {
    /// Post the distributor's new orders to URL; prints the signing secret once.
    Set {
        #[arg(long)]
        distributor: String,
        #[arg(long)]
        url: String,
    },
    /// Stop posting (the feed keeps working).
    Remove {
        #[arg(long)]
        distributor: String,
    },
}

#[derive(Subcommand)]
enum ApiKeyAction {
    /// Create a key for a distributor; it is printed once and stored hashed.
    Add {
        #[arg(long)]
        distributor: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a key by its id.
    Revoke {
        #[arg(long)]
        distributor: String,
        id: i64,
    },
}

#[derive(Subcommand)]
enum KeyUserAction {
    /// Create a login for the back office.
    Add {
        login: String,
        /// head_office (every distributor), key_user (its distributors), read_only, or
        /// distributor (the portal: its orders and imports).
        #[arg(long)]
        role: String,
        /// A distributor (sync point) the login sees; repeat for several.
        #[arg(long)]
        distributor: Vec<String>,
        /// Read the password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (its sessions end); read from standard input.
    ResetPassword {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a login: it can no longer log in and its sessions end at once.
    Disable { login: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FIELDSYNC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Logs on standard error: standard output carries what a command prints (a key, a
        // PIN, a secret) for scripts to capture.
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let settings = Settings::load(
        &Overrides {
            config_file: cli.config.clone(),
            database_url: cli.database_url.clone(),
            listen: cli.listen.clone(),
        },
        |k| std::env::var(k).ok(),
    )?;
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| format!("opening database {}", redact(&settings.database_url)))?;
    match cli.command {
        Command::Serve { demo } => serve(store, &settings, demo).await,
        Command::Seed {
            agents,
            outlets,
            products,
            distributor,
            seed: rng_seed,
            agents_per_territory,
            invoices_per_outlet,
            plans,
            pins_out,
        } => {
            let spec = WorldSpec {
                distributor_code: distributor.clone(),
                distributor_name: format!("{distributor} distribution"),
                agents,
                outlets,
                products,
                radius_m: 15_000.0,
                seed: rng_seed,
                agents_per_territory,
                invoices_per_outlet,
                plans,
                ..WorldSpec::demo()
            };
            let started = std::time::Instant::now();
            let pins = seed::seed_world(&store, &spec).await?;
            seed::write_pins(&pins_out, &pins)?;
            println!(
                "seeded {agents} agents, {outlets} outlets, {products} products in {:.1}s; PINs in {}",
                started.elapsed().as_secs_f64(),
                pins_out.display()
            );
            Ok(())
        }
        Command::Pin { login } => {
            let pin = store
                .generate_pin(&login)
                .await
                .with_context(|| format!("no mobile user {login}"))?;
            println!("{pin}");
            Ok(())
        }
        Command::RotateEpoch => {
            let mut store = store;
            println!("new epoch {}", store.rotate_epoch().await?);
            Ok(())
        }
        Command::Migrate => {
            println!("database is up to date");
            Ok(())
        }
        Command::ApiKey { action } => {
            let (ApiKeyAction::Add { distributor, .. } | ApiKeyAction::Revoke { distributor, .. }) =
                &action;
            let d = distributor_id(&store, distributor).await?;
            match action {
                ApiKeyAction::Add { distributor, label } => {
                    let (id, key) = store.create_api_key(d, &label, now_ms()).await?;
                    println!("{key}");
                    eprintln!("API key {id} for {distributor}; it is shown only now.");
                }
                ApiKeyAction::Revoke { distributor, id } => {
                    store
                        .revoke_api_key(d, id, now_ms())
                        .await
                        .with_context(|| format!("no live API key {id} of {distributor}"))?;
                    println!("API key {id} revoked");
                }
            }
            Ok(())
        }
        Command::Webhook { action } => {
            let code = match &action {
                WebhookAction::Set { distributor, .. } | WebhookAction::Remove { distributor } => {
                    distributor.clone()
                }
            };
            let d = distributor_id(&store, &code).await?;
            match action {
                WebhookAction::Set { url, .. } => {
                    let secret = store
                        .set_webhook(
                            d,
                            &url,
                            fieldsync_server::exchange::webhooks::Targets {
                                allow_private: settings.webhook_allow_private,
                            },
                            now_ms(),
                        )
                        .await
                        .map_err(|e| said(e, None, None))?;
                    println!("{secret}");
                    eprintln!(
                        "New orders of {code} are posted to {url}, signed with this secret (shown only now)."
                    );
                }
                WebhookAction::Remove { .. } => {
                    store.remove_webhook(d).await?;
                    println!("webhook of {code} removed");
                }
            }
            Ok(())
        }
        Command::KeyUser {
            action:
                KeyUserAction::ResetPassword {
                    login,
                    password_stdin,
                },
        } => {
            let password = password_from_stdin(password_stdin)?;
            store
                .reset_key_user_password(&login, &password)
                .await
                .map_err(|e| said(e, Some(&format!("no login {login}")), None))?;
            println!("password of {login} set; its sessions ended");
            Ok(())
        }
        Command::KeyUser {
            action: KeyUserAction::Disable { login },
        } => {
            store
                .disable_key_user(&login, now_ms())
                .await
                .map_err(|e| said(e, Some(&format!("no login {login}")), None))?;
            println!("{login} disabled; its sessions ended");
            Ok(())
        }
        Command::KeyUser {
            action:
                KeyUserAction::Add {
                    login,
                    role,
                    distributor,
                    password_stdin,
                },
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!(
                    "unknown role {role:?}: use head_office, key_user, read_only or distributor"
                )
            })?;
            let password = password_from_stdin(password_stdin)?;
            store
                .create_key_user(&login, &password, role, &distributor, now_ms())
                .await
                .map_err(|e| said(e, None, Some(&format!("login {login} exists already"))))?;
            println!("key user {login} created ({})", role.as_str());
            Ok(())
        }
    }
}

/// A distributor's id by its code.
async fn distributor_id(store: &Store, code: &str) -> anyhow::Result<i64> {
    store
        .distributor_id(code)
        .await
        .with_context(|| format!("no distributor {code}"))
}

/// The password given on standard input (its first line), which `--password-stdin` must ask for.
fn password_from_stdin(password_stdin: bool) -> anyhow::Result<String> {
    anyhow::ensure!(
        password_stdin,
        "give the password on standard input with --password-stdin"
    );
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    Ok(password.trim_end_matches(['\r', '\n']).to_string())
}

/// A store error as a command says it: a refusal in its own words, `missing` for what is
/// not there and `taken` for a clash (when the command names them), anything else as it is.
fn said(e: StoreError, missing: Option<&str>, taken: Option<&str>) -> anyhow::Error {
    match (e, missing, taken) {
        (StoreError::NotFound, Some(m), _) | (StoreError::Conflict(_), _, Some(m)) => {
            anyhow::anyhow!("{m}")
        }
        (StoreError::Refused(p), _, _) => anyhow::anyhow!(p.to_string()),
        (other, _, _) => other.into(),
    }
}

async fn serve(store: Store, settings: &Settings, demo: bool) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let store = store.with_public_url(&settings.public_url());
    let mailer = match settings.mail()? {
        Some(m) => {
            if settings.public_url.is_none() {
                tracing::warn!(
                    url = %settings.public_url(),
                    "mail is on but public_url is not set: links in mail point at the listen address"
                );
            }
            Some(fieldsync_server::mail::Mailer::new(&m)?)
        }
        None => None,
    };
    if demo {
        if store.distributors().await?.is_empty() {
            // Routes for the past week too: the demo's agents have worked it.
            let spec = WorldSpec {
                days_back: 7,
                invoices_per_outlet: 3,
                plans: true,
                ..WorldSpec::demo()
            };
            let seeded = seed::seed_world(&store, &spec).await?;
            let agents = fieldsync_server::demo::load_past_week(&store, &seeded, 7).await?;
            println!(
                "Demo world loaded: distributor DEMO, {} outlets around Kyiv, and a past week of \
                 visits, orders and syncs of its agents.",
                WorldSpec::demo().outlets
            );
            println!("Activate an agent app against http://{addr} with one of these:");
            println!("  login              PIN");
            for a in &agents {
                println!("  {:<18} {}", a.login, a.pin);
            }
            println!("New PIN later: fieldsync-server pin LOGIN");
            let password = demo_password();
            store
                .create_key_user("demo", &password, Role::HeadOffice, &[], now_ms())
                .await?;
            store
                .create_key_user(
                    "demo-kp",
                    &password,
                    Role::KeyUser,
                    &["DEMO".to_string()],
                    now_ms(),
                )
                .await?;
            println!();
            println!("Back office: http://{addr}/login");
            println!("  login              password");
            println!("  demo               {password}   (head office)");
            println!("  demo-kp            {password}   (key user of DEMO)");
        } else {
            println!("Database already has data; demo world not loaded again.");
        }
    }
    println!(
        "fieldsync-server listening on http://{addr} (database {})",
        redact(&settings.database_url)
    );
    let mut state = AppState::new(store.clone());
    state.web = std::sync::Arc::new(settings.web());
    state.limits = settings.limits();
    state.webhook_targets.allow_private = settings.webhook_allow_private;
    state.device_signals = settings.device_signals;
    state.mail_enabled = mailer.is_some();
    let webhooks = fieldsync_server::exchange::webhooks::spawn(
        store.clone(),
        fieldsync_server::exchange::webhooks::Targets {
            allow_private: settings.webhook_allow_private,
        },
    );
    let maintenance = fieldsync_server::store::maintenance::spawn(store.clone());
    let mail = mailer.map(|m| (fieldsync_server::mail::spawn(store.clone(), m.clone()), m));
    fieldsync_server::serve(listener, state, stop_signal()).await?;
    tracing::info!("stopped accepting; requests in flight finished");
    webhooks.abort();
    maintenance.abort();
    if let Some((task, mailer)) = mail {
        task.abort();
        // What it had claimed and not yet begun to send goes back to the queue.
        if let Err(e) = mailer.release(&store).await {
            tracing::warn!(error = %e, "claimed mail not given back");
        }
    }
    store.close().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what a service manager or a rolling deploy sends).
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: draining requests in flight");
}

/// A random demo password that meets the password rules (letters and digits).
fn demo_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let letters: String = (0..6)
        .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
        .collect();
    format!("{letters}{:04}", rng.random_range(0..10_000u32))
}
