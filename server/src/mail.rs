//! Outgoing mail. The back office queues messages in the database (`store::mail`); every
//! server whose settings name an SMTP host runs [`spawn`], which claims due messages and
//! sends them. A failed send is retried with growing pauses; a mail server's permanent
//! refusal (5xx) and the last attempt give the message up. The letters themselves (import
//! results, RDC failures, password-reset links, support requests and the morning digest)
//! are composed here in the recipient's language.
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::Store;
use crate::store::mail::{ClaimedMail, LEASE_MS, MAX_ATTEMPTS, Outgoing};
use crate::web::T;

/// How often a server looks for mail to send.
pub const PERIOD: Duration = Duration::from_secs(5);
/// Messages one round claims at most.
pub const BATCH: i64 = 20;
/// Longest one SMTP exchange may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the mail server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection (a relay on the same host or network only).
    None,
    /// Plain connection upgraded with STARTTLS, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl Security {
    pub fn parse(s: &str) -> Option<Security> {
        match s.trim().to_lowercase().as_str() {
            "none" | "plain" => Some(Security::None),
            "starttls" => Some(Security::StartTls),
            "tls" | "ssl" => Some(Security::Tls),
            _ => None,
        }
    }
}

/// Where and how mail is sent.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The sender, `Name <address>` or an address.
    pub from: String,
}

/// A server's sender: the SMTP transport and who it is among servers (its claims' owner).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    owner: String,
    /// The message being sent right now (0: none), so that a stopping server gives back
    /// everything else it claimed.
    in_flight: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub given_up: usize,
}

impl Mailer {
    pub fn new(s: &MailSettings) -> anyhow::Result<Mailer> {
        let builder = match s.security {
            Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)?,
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)?,
        };
        let mut builder = builder.port(s.port).timeout(Some(SEND_TIMEOUT));
        if let (Some(user), Some(password)) = (&s.user, &s.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from {:?}: {e}", s.from))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            owner: uuid::Uuid::new_v4().to_string(),
            in_flight: Default::default(),
        })
    }

    /// Gives back to the queue what this server claimed and has not begun to send (called
    /// when it stops; the message in flight, if any, stays with the housekeeping).
    pub async fn release(&self, store: &Store) -> crate::store::Result<u64> {
        let sending = self.in_flight.load(std::sync::atomic::Ordering::SeqCst);
        store.unclaim_mail(&self.owner, None, sending).await
    }

    /// Claims due messages and sends them; each outcome is recorded only while this server
    /// still holds its claim.
    pub async fn deliver_due(&self, store: &Store, now: i64) -> crate::store::Result<Round> {
        let mut round = Round::default();
        let started = std::time::Instant::now();
        let elapsed = || started.elapsed().as_millis() as i64;
        for m in store.claim_mail(&self.owner, now, BATCH).await? {
            // A claim about to run out is not used: another server could take it over while
            // the send is still going on.
            if elapsed() + SEND_TIMEOUT.as_millis() as i64 * 2 > LEASE_MS {
                store.unclaim_mail(&self.owner, Some(m.id), 0).await?;
                continue;
            }
            self.in_flight
                .store(m.id, std::sync::atomic::Ordering::SeqCst);
            let outcome = match self.message(&m) {
                Ok(msg) => self.transport.send(msg).await.map(|_| ()).map_err(|e| {
                    let permanent = e.is_permanent();
                    (e.to_string(), permanent)
                }),
                Err(e) => Err((e, true)),
            };
            match outcome {
                Ok(()) => {
                    store.mail_sent(m.id, &self.owner, now + elapsed()).await?;
                    round.sent += 1;
                }
                Err((error, permanent)) => {
                    let next = (!permanent && m.attempts < MAX_ATTEMPTS)
                        .then(|| now + elapsed() + retry_pause_ms(m.attempts));
                    tracing::warn!(id = m.id, %error, retry = next.is_some(), "mail not sent");
                    store.mail_not_sent(m.id, &self.owner, next, &error).await?;
                    if next.is_some() {
                        round.retried += 1;
                    } else {
                        round.given_up += 1;
                    }
                }
            }
            self.in_flight.store(0, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(round)
    }

    /// The message of an outbox row. Its `Message-ID` is the row's, so a receiving system
    /// can tell it apart from every other.
    fn message(&self, m: &ClaimedMail) -> Result<Message, String> {
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| format!("recipient {:?}: {e}", m.to))?;
        let domain = self.from.email.domain().to_string();
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&m.subject)
            .message_id(Some(format!(
                "<fieldsync.{}.{}@{domain}>",
                m.id, m.created_at_ms
            )));
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone());
        let built = match &m.attachment {
            Some((name, bytes)) => {
                let kind =
                    ContentType::parse(content_type_of(name)).unwrap_or(ContentType::TEXT_PLAIN);
                builder.multipart(
                    MultiPart::mixed()
                        .singlepart(text)
                        .singlepart(Attachment::new(name.clone()).body(bytes.clone(), kind)),
                )
            }
            None => builder.singlepart(text),
        };
        built.map_err(|e| e.to_string())
    }
}

/// The pause before attempt `attempts + 1`: 1, 2, 4, 8, 16 minutes.
pub fn retry_pause_ms(attempts: i64) -> i64 {
    60_000 << (attempts - 1).clamp(0, 5)
}

fn content_type_of(name: &str) -> &'static str {
    let lower = name.to_lowercase();
    if lower.ends_with(".csv") {
        "text/csv"
    } else if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".txt") {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// Sends due mail every [`PERIOD`] until the process ends.
pub fn spawn(store: Store, mailer: Mailer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = mailer.deliver_due(&store, crate::store::now_ms()).await {
                tracing::warn!(error = %e, "sending mail failed");
            }
        }
    })
}

/// The link to a back-office page (`path` starts with `/`).
pub fn link(public_url: &str, path: &str) -> String {
    format!("{}{path}", public_url.trim_end_matches('/'))
}

/// Failed lines an RDC failure mail attaches at most (the rest are on the RDC's page).
pub const RDC_FAILURE_ROWS: usize = 10_000;

/// The letters the back office sends, in the recipient's language.
pub mod letters {
    use super::*;

    /// A catalogue text whose `\n` are line breaks, with its placeholders filled (what
    /// fills them is taken as it is).
    fn text(t: &T, key: &str, args: &[(&str, &str)]) -> String {
        fieldsync_protocol::i18n::fill(&t.s(key).replace("\\n", "\n"), args)
    }

    /// A subject on one line: control characters (a line break sent in a form) become spaces.
    fn one_line(s: String) -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }

    /// An import's outcome, with its refused rows as a CSV file when there are any.
    pub fn import_result(
        lang: &str,
        to: &str,
        job: &crate::store::imports::ImportJob,
        refused_file: Vec<u8>,
        public_url: &str,
    ) -> Outgoing {
        let t = T::new(lang);
        let status = t.value("import_status", &job.status);
        let kind = t.value("import_kind", &job.kind);
        let n = |v: i64| v.to_string();
        let mut body = text(
            &t,
            "mail.import.body",
            &[
                ("kind", &kind),
                ("file", &job.file_name),
                ("status", &status),
                ("read", &n(job.rows_read)),
                ("applied", &n(job.rows_applied)),
                ("refused", &n(job.rows_refused)),
                ("message", &job.message),
            ],
        );
        body.push_str("\n\n");
        body.push_str(&link(public_url, &format!("/imports/{}", job.id)));
        if !refused_file.is_empty() {
            body.push_str("\n\n");
            body.push_str(&t.s("mail.import.attached"));
        }
        Outgoing {
            kind: "import",
            to: to.into(),
            subject: one_line(t.f(
                "mail.import.subject",
                &[("kind", &kind), ("status", &status)],
            )),
            body,
            attachment: (!refused_file.is_empty())
                .then(|| (format!("import-{}-refused.csv", job.id), refused_file)),
        }
    }

    /// The lines an RDC run could not redistribute, as text and as a CSV file.
    pub fn rdc_failures(
        lang: &str,
        to: &str,
        run_id: i64,
        failures: &[(String, i64, String)],
        public_url: &str,
    ) -> Outgoing {
        let t = T::new(lang);
        let mut csv = csv::Writer::from_writer(Vec::new());
        let _ = csv.write_record(["invoice", "line", "reason"]);
        // The file stays well under the outbox's attachment limit.
        for (invoice, line, reason) in failures.iter().take(RDC_FAILURE_ROWS) {
            let _ = csv.write_record([invoice.as_str(), &line.to_string(), reason.as_str()]);
        }
        let file = csv.into_inner().unwrap_or_default();
        let body = format!(
            "{}\n\n{}",
            t.f(
                "mail.rdc.body",
                &[
                    ("run", &run_id.to_string()),
                    ("n", &failures.len().to_string())
                ]
            ),
            link(public_url, "/rdcs/run")
        );
        Outgoing {
            kind: "rdc",
            to: to.into(),
            subject: t.f("mail.rdc.subject", &[("n", &failures.len().to_string())]),
            body,
            attachment: Some((format!("rdc-run-{run_id}-failures.csv"), file)),
        }
    }

    /// A password-reset link.
    pub fn password_reset(
        lang: &str,
        to: &str,
        login: &str,
        token: &str,
        public_url: &str,
    ) -> Outgoing {
        let t = T::new(lang);
        let url = link(public_url, &format!("/password/reset?token={token}"));
        Outgoing {
            kind: "password_reset",
            to: to.into(),
            subject: t.s("mail.reset.subject"),
            body: text(
                &t,
                "mail.reset.body",
                &[
                    ("login", login),
                    ("url", &url),
                    (
                        "minutes",
                        &(crate::store::password_reset::RESET_MS / 60_000).to_string(),
                    ),
                ],
            ),
            attachment: None,
        }
    }

    /// A step of a support request: `step` is 'opened' | 'answer' | 'confirmed' | 'reopened'.
    #[allow(clippy::too_many_arguments)]
    pub fn support_step(
        lang: &str,
        to: &str,
        request_id: i64,
        subject: &str,
        step: &str,
        author: &str,
        text: &str,
        public_url: &str,
    ) -> Outgoing {
        let t = T::new(lang);
        let id = request_id.to_string();
        Outgoing {
            kind: "support",
            to: to.into(),
            subject: one_line(t.f(
                &format!("mail.support.{step}.subject"),
                &[("id", &id), ("subject", subject)],
            )),
            body: format!(
                "{}\n\n{}\n\n{}",
                t.f(
                    &format!("mail.support.{step}.body"),
                    &[("id", &id), ("subject", subject), ("author", author)]
                ),
                text,
                link(public_url, &format!("/support/{request_id}"))
            ),
            attachment: None,
        }
    }

    /// A notice to the old address that a login's mail address was changed.
    pub fn email_changed(lang: &str, to: &str, login: &str, new_address: &str) -> Outgoing {
        let t = T::new(lang);
        let new_address = if new_address.is_empty() {
            t.s("mail.email_changed.none")
        } else {
            new_address.to_string()
        };
        Outgoing {
            kind: "account",
            to: to.into(),
            subject: t.s("mail.email_changed.subject"),
            body: t.f(
                "mail.email_changed.body",
                &[("login", login), ("address", &new_address)],
            ),
            attachment: None,
        }
    }

    /// The morning digest of open support requests: (id, distributor, subject, state, days
    /// waiting).
    pub fn digest(
        lang: &str,
        to: &str,
        day: &str,
        open: &[(i64, String, String, String, i64)],
        public_url: &str,
    ) -> Outgoing {
        let t = T::new(lang);
        let mut body = t.f(
            "mail.digest.body",
            &[("n", &open.len().to_string()), ("day", day)],
        );
        body.push('\n');
        for (id, distributor, subject, state, days) in open {
            body.push_str(&format!(
                "\n#{id} · {distributor} · {subject} · {} · {}",
                t.value("support_state", state),
                t.f("mail.digest.days", &[("n", &days.to_string())])
            ));
        }
        body.push_str("\n\n");
        body.push_str(&link(public_url, "/support?f.state=open"));
        Outgoing {
            kind: "digest",
            to: to.into(),
            subject: t.f(
                "mail.digest.subject",
                &[("n", &open.len().to_string()), ("day", day)],
            ),
            body,
            attachment: None,
        }
    }
}
