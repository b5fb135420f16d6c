//! A small W3C WebDriver client for the back-office tests: a real headless Chromium driven
//! through `chromedriver` (Debian packages `chromium` and `chromium-driver`).
//!
//! Each [`Browser`] starts its own chromedriver on a free port and one Chromium session with a
//! fresh profile, and closes both on [`Browser::close`] (or on drop).
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Makes sure the npm packages the back office serves (Leaflet, Chart.js) are installed where
/// the server looks for them
/// (`server/web/node_modules`), running `npm ci` once if it is not. Test binaries run at the
/// same time take turns through an exclusive lock on `server/web/.npm-install.lock`, so one
/// installs while the others wait and then find it installed.
pub fn ensure_leaflet() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/web");
    let installed = || {
        dir.join("node_modules/leaflet/dist/leaflet.js").exists()
            && dir.join("node_modules/chart.js/dist/chart.umd.js").exists()
    };
    if installed() {
        return;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".npm-install.lock"))
        .expect("open server/web/.npm-install.lock");
    lock.lock().expect("lock server/web/.npm-install.lock");
    for _ in 0..3 {
        if installed() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status();
        if matches!(status, Ok(s) if s.success()) && installed() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!(
        "Leaflet is not installed: run `npm ci --prefix server/web` (needs npm and the npm registry)"
    );
}

/// One Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start() -> Browser {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {chromedriver}: {e}. Install the Debian packages chromium and chromium-driver"
                )
            });
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir").keep();
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                        "--window-size=1280,1000",
                        format!("--user-data-dir={}", profile.display()),
                    ]
                }
            } }
        });
        let resp: Value = http
            .post(format!("{base}/session"))
            .body(caps.to_string())
            .header("content-type", "application/json")
            .send()
            .await
            .expect("new session")
            .json_value()
            .await;
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {resp}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req
                .body(b.to_string())
                .header("content-type", "application/json");
        }
        let v = req
            .send()
            .await
            .expect("webdriver request")
            .json_value()
            .await;
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    /// Logs in to the back office at `url`.
    pub async fn log_in(&self, url: &str, login: &str, password: &str) {
        self.goto(&format!("{url}/login")).await;
        self.fill("#login", login).await;
        self.fill("#password", password).await;
        self.click("#submit").await;
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching a CSS selector, if any.
    pub async fn find_opt(&self, css: &str) -> Option<Element> {
        let v = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        v[ELEMENT_KEY].as_str().map(|id| Element(id.to_string()))
    }

    /// The first element matching a CSS selector; waits up to 5 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        for _ in 0..100 {
            if let Some(e) = self.find_opt(css).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no element {css} on {}:\n{}",
            self.current_url().await,
            self.text("body").await
        );
    }

    pub async fn count(&self, css: &str) -> usize {
        self.post(
            "/elements",
            json!({ "using": "css selector", "value": css }),
        )
        .await
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
    }

    /// Clicks an element that leads to another page (a link, a submit button) and waits
    /// until the next page has loaded.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.run("window.__fsOldPage = true").await;
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await;
        for _ in 0..200 {
            let v = self
                .run(
                    "return window.__fsOldPage === undefined && document.readyState === 'complete'",
                )
                .await;
            if v == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} did not lead to a new page");
    }

    /// Clears an input and types into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    /// The visible text of the first element matching a selector.
    pub async fn text(&self, css: &str) -> String {
        let Some(e) = self.find_opt(css).await else {
            return String::new();
        };
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Runs JavaScript in the page and returns its result. `async` bodies may `return` a
    /// promise's value through the callback `arguments[0]` with [`Browser::run_async`].
    pub async fn run(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Runs JavaScript whose last argument is a callback to call with the result.
    pub async fn run_async(&self, script: &str) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": [] }))
            .await
    }

    /// The text of an open alert dialog, if one is open.
    pub async fn alert_text(&self) -> Option<String> {
        let v = self.cmd(reqwest::Method::GET, "/alert/text", None).await;
        v.as_str().map(str::to_string)
    }

    /// A PNG screenshot of the page.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        if let Some(b64) = v.as_str()
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64)
        {
            let _ = std::fs::write(path, bytes);
        }
    }

    pub async fn close(mut self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        let text = self.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}
