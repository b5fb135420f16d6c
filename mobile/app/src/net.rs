//! The network worker. Every network call of the app runs here, on a thread of its own with
//! its own async runtime; screens send commands and watch the status, so the UI thread never
//! waits on the network.
//!
//! The worker also syncs on its own: every `auto_every` it asks the server's health check
//! whether the network is there; when it is back after being away, or when items are waiting,
//! it syncs.
use std::time::Duration;

use fieldsync_agent::{Engine, HttpTransport, SyncError, SyncProgress, SyncReport};
use fieldsync_protocol::v1::ErrorCode;
use tokio::sync::{mpsc, oneshot, watch};

/// How a failed network call should be explained to the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No answer: no network, or the server address is wrong.
    Offline(String),
    /// Activation refused: wrong, used, revoked PIN, or too many attempts.
    Pin {
        code: ErrorCode,
        retry_after_ms: i64,
    },
    /// The phone was unbound on the server: a new PIN is needed.
    NeedsActivation,
    /// The distributor's account is deactivated on the server: nothing syncs until the head
    /// office reactivates it; the work stays on the phone.
    DistributorInactive,
    /// Any other refusal, with the server's words.
    Refused(String),
    /// The phone's own storage failed.
    Local(String),
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        if e.needs_activation() {
            return Failure::NeedsActivation;
        }
        match e {
            SyncError::Network(m) => Failure::Offline(m),
            SyncError::Server {
                code:
                    code @ (ErrorCode::PinWrong
                    | ErrorCode::PinUsed
                    | ErrorCode::PinRevoked
                    | ErrorCode::PinLocked),
                retry_after_ms,
                ..
            } => Failure::Pin {
                code,
                retry_after_ms,
            },
            SyncError::Server {
                code: ErrorCode::DistributorInactive,
                ..
            } => Failure::DistributorInactive,
            e @ SyncError::Server { .. } if e.is_retryable() => Failure::Offline(e.to_string()),
            SyncError::Server { message, .. } => Failure::Refused(message),
            SyncError::NotActivated => Failure::NeedsActivation,
            SyncError::Local(e) => Failure::Local(e.to_string()),
        }
    }
}

/// The result of the last sync.
#[derive(Debug, Clone, PartialEq)]
pub struct LastSync {
    pub finished_ms: i64,
    pub result: Result<SyncReport, Failure>,
    /// Started by the agent (true) or by the worker (false).
    pub manual: bool,
}

/// What the screens show about the network.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetStatus {
    /// A sync is running.
    pub running: bool,
    /// Its last progress step.
    pub progress: Option<SyncProgress>,
    /// How the last sync ended.
    pub last: Option<LastSync>,
    /// Whether the server answered the last probe (None: not probed yet).
    pub online: Option<bool>,
    /// Syncs finished so far (screens re-read local data when it changes).
    pub finished: u64,
}

enum Command {
    Activate {
        server: String,
        login: String,
        pin: String,
        reply: oneshot::Sender<Result<(), Failure>>,
    },
    Sync {
        manual: bool,
    },
}

/// The app's handle on the worker: cheap to clone, safe to share.
#[derive(Clone)]
pub struct NetHandle {
    tx: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<NetStatus>,
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// How often to look for the network and sync on its own; `None`: only when asked.
    pub auto_every: Option<Duration>,
    /// Sent at activation.
    pub device_model: String,
    pub app_version: String,
}

impl NetHandle {
    /// Starts the worker thread for `engine`.
    pub fn start(engine: Engine, config: NetConfig) -> NetHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(NetStatus::default());
        std::thread::Builder::new()
            .name("fieldsync-net".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("network runtime");
                rt.block_on(worker(engine, config, rx, status_tx));
            })
            .expect("network thread");
        NetHandle { tx, status }
    }

    /// The status now.
    pub fn status(&self) -> NetStatus {
        self.status.borrow().clone()
    }

    /// A receiver that wakes on every status change.
    pub fn subscribe(&self) -> watch::Receiver<NetStatus> {
        self.status.clone()
    }

    /// Activates with a PIN; resolves when the server has answered.
    pub async fn activate(
        &self,
        server: String,
        login: String,
        pin: String,
    ) -> Result<(), Failure> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Activate {
                server,
                login,
                pin,
                reply,
            })
            .map_err(|_| Failure::Local("network worker stopped".into()))?;
        rx.await
            .map_err(|_| Failure::Local("network worker stopped".into()))?
    }

    /// Asks for a sync now (ignored while one runs); watch the status for its progress.
    pub fn sync_now(&self) {
        let _ = self.tx.send(Command::Sync { manual: true });
    }
}

async fn worker(
    engine: Engine,
    config: NetConfig,
    mut rx: mpsc::UnboundedReceiver<Command>,
    status: watch::Sender<NetStatus>,
) {
    let mut transport: Option<HttpTransport> = None;
    let mut tick = tokio::time::interval(config.auto_every.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Command::Activate { server, login, pin, reply }) => {
                    let t = HttpTransport::new(server.trim());
                    let r = engine
                        .activate(&t, server.trim(), &login, &pin, &config.device_model, &config.app_version)
                        .await
                        .map(|_| ())
                        .map_err(Failure::from);
                    if r.is_ok() {
                        status.send_modify(|s| s.online = Some(true));
                        transport = Some(t);
                    }
                    let _ = reply.send(r);
                }
                Some(Command::Sync { manual }) => {
                    run_sync(&engine, &mut transport, &status, manual).await;
                }
            },
            _ = tick.tick(), if config.auto_every.is_some() => {
                auto_sync(&engine, &mut transport, &status).await;
            }
        }
    }
}

/// The transport for the server the phone is bound to.
fn transport_for<'a>(
    engine: &Engine,
    transport: &'a mut Option<HttpTransport>,
) -> Option<&'a HttpTransport> {
    let url = engine.profile().ok().flatten()?.server_url;
    if url.is_empty() {
        return None;
    }
    if transport
        .as_ref()
        .is_none_or(|t| t.base_url() != url.trim_end_matches('/'))
    {
        *transport = Some(HttpTransport::new(&url));
    }
    transport.as_ref()
}

async fn auto_sync(
    engine: &Engine,
    transport: &mut Option<HttpTransport>,
    status: &watch::Sender<NetStatus>,
) {
    if !engine.is_activated().unwrap_or(false) {
        return;
    }
    let Some(t) = transport_for(engine, transport) else {
        return;
    };
    let online = t.probe(Duration::from_secs(5)).await;
    let was = status.borrow().online;
    status.send_modify(|s| s.online = Some(online));
    if !online {
        return;
    }
    let came_back = was == Some(false);
    let waiting = engine
        .outbox_status()
        .map(|s| s.pending > 0)
        .unwrap_or(false);
    let last_failed = status
        .borrow()
        .last
        .as_ref()
        .is_some_and(|l| matches!(l.result, Err(Failure::Offline(_))));
    let stale = engine
        .outbox_status()
        .ok()
        .and_then(|s| s.last_sync_ms)
        .is_none_or(|ms| engine.now_ms() - ms > 15 * 60 * 1000);
    if came_back || waiting || last_failed || stale {
        run_sync(engine, transport, status, false).await;
    }
}

async fn run_sync(
    engine: &Engine,
    transport: &mut Option<HttpTransport>,
    status: &watch::Sender<NetStatus>,
    manual: bool,
) {
    let result = match transport_for(engine, transport) {
        None => Err(Failure::NeedsActivation),
        Some(t) => {
            status.send_modify(|s| {
                s.running = true;
                s.progress = None;
            });
            let observe = |p: SyncProgress| status.send_modify(|s| s.progress = Some(p));
            engine
                .sync_observed(t, &observe)
                .await
                .map_err(Failure::from)
        }
    };
    let finished_ms = engine.now_ms();
    status.send_modify(|s| {
        s.running = false;
        s.online = Some(!matches!(result, Err(Failure::Offline(_))));
        s.finished += 1;
        s.last = Some(LastSync {
            finished_ms,
            result,
            manual,
        });
    });
}
