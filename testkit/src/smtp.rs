//! A real SMTP server for mail tests: `testkit/smtp_sink.py` on aiosmtpd (from PyPI;
//! `.ci/run` installs it), started per test on a free port. It keeps each message it accepts
//! as JSON (envelope, subject, Message-ID, plain text, attachments), which the test reads.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use fieldsync_server::mail::{MailSettings, Security};
use serde_json::Value;

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpSink {
    /// Starts the server; panics with what to install when Python or aiosmtpd is missing.
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the SMTP sink starts");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("the SMTP sink did not start (pip install aiosmtpd): {line:?}")
            });
        SmtpSink { port, dir, child }
    }

    /// Settings that send to this server (plain SMTP on localhost).
    pub fn settings(&self) -> MailSettings {
        MailSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            security: Security::None,
            user: None,
            password: None,
            from: "fieldsync <noreply@fieldsync.test>".into(),
        }
    }

    /// Every message received so far, in the order received.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read the sink's directory")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// The messages once there are at least `n` (waits up to 10 s; the sink writes each
    /// message right after accepting it).
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.messages()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An attachment's bytes from a received message.
pub fn attachment(message: &Value, index: usize) -> (String, Vec<u8>) {
    let a = &message["attachments"][index];
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(a["content"].as_str().unwrap_or_default())
        .expect("base64 attachment");
    (
        a["filename"].as_str().unwrap_or_default().to_string(),
        bytes,
    )
}
