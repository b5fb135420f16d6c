//! A UI driver for end-to-end runs of the desktop build (`--e2e-script FILE`): it clicks and
//! types through the real webview's DOM, so every step goes through the same event handlers
//! as a finger would, and saves screenshots with an external command.
//!
//! Script lines (`#` starts a comment):
//! - `wait SELECTOR` — until an element matches (20 s at most);
//! - `click SELECTOR`;
//! - `fill SELECTOR = TEXT` — types TEXT into an input, textarea or select;
//! - `expect SELECTOR = TEXT` — until the element's text contains TEXT;
//! - `shot NAME` — runs the screenshot command for NAME;
//! - `sleep MS`;
//! - `ready` — prints how long the app took from start to this point.
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dioxus::prelude::*;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Wait(String),
    Click(String),
    Fill(String, String),
    Expect(String, String),
    /// Scrolls the element into view (for a screenshot of a part below the fold).
    Scroll(String),
    Shot(String),
    Sleep(u64),
    Ready,
}

/// A parsed script.
#[derive(Debug)]
pub struct Script {
    steps: Vec<(usize, Step)>,
    shot_cmd: String,
    started: Instant,
}

impl Script {
    pub fn load(path: &Path, shot_cmd: &str, started: Instant) -> Result<Script, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let mut steps = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
            let rest = rest.trim();
            let two = || -> Result<(String, String), String> {
                let (a, b) = rest
                    .split_once(" = ")
                    .ok_or(format!("line {}: {verb} needs SELECTOR = TEXT", n + 1))?;
                Ok((a.trim().to_string(), b.to_string()))
            };
            let step = match verb {
                "wait" => Step::Wait(rest.to_string()),
                "click" => Step::Click(rest.to_string()),
                "fill" => {
                    let (a, b) = two()?;
                    Step::Fill(a, b)
                }
                "expect" => {
                    let (a, b) = two()?;
                    Step::Expect(a, b)
                }
                "shot" => Step::Shot(rest.to_string()),
                "scroll" => Step::Scroll(rest.to_string()),
                "sleep" => Step::Sleep(
                    rest.parse()
                        .map_err(|_| format!("line {}: sleep MS", n + 1))?,
                ),
                "ready" => Step::Ready,
                other => return Err(format!("line {}: unknown step {other}", n + 1)),
            };
            steps.push((n + 1, step));
        }
        Ok(Script {
            steps,
            shot_cmd: shot_cmd.to_string(),
            started,
        })
    }
}

/// The script, if the app runs under one; handed over as context.
#[derive(Clone)]
pub struct Driver(pub Option<Arc<Script>>);

/// A JavaScript string literal.
fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '<' => out.push_str("\\u003c"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs a check in the webview: `Ok(true)` once it holds, `Err` when the evaluation itself
/// failed (a script error, or the webview did not answer).
async fn check(script: String) -> Result<bool, String> {
    let result = document::eval(&script)
        .join::<bool>()
        .await
        .map_err(|e| e.to_string());
    if let Err(e) = &result {
        LOST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        eprintln!("e2e: an evaluation came back without an answer ({e}); trying again");
    }
    result
}

/// Evaluations that returned no answer. dioxus-desktop 0.7 drops an evaluation's result when
/// the page's garbage collector reports its channel gone before the app has read the answer
/// (the result and the drop arrive together); the steps are written to survive that.
static LOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn until(what: &str, script: String) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = check(script.clone()).await;
        if last == Ok(true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let last = match last {
                Ok(_) => "no match".to_string(),
                Err(e) => format!("evaluation failed: {e}"),
            };
            return Err(format!("timed out: {what} ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `body` returns true, run with `el` bound to the element `sel` selects (null
/// while there is none).
async fn until_on(what: &str, sel: &str, body: &str) -> Result<(), String> {
    let script = format!("const el = document.querySelector({}); {body}", js(sel));
    until(what, script).await
}

/// What the screen shows (its text, shortened), for the report of a failed step.
async fn screen_text() -> String {
    let text = document::eval(
        "const el = document.querySelector('.app'); return el ? el.innerText : '(no .app element)';",
    )
    .join::<String>()
    .await
    .unwrap_or_else(|e| format!("(could not read the screen: {e})"));
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(800).collect()
}

/// Runs the step on script line `line`.
async fn run_step(script: &Script, line: usize, step: &Step) -> Result<(), String> {
    match step {
        Step::Wait(sel) => until_on(&format!("wait {sel}"), sel, "return el !== null;").await,
        Step::Click(sel) => {
            // A click happens once: if the answer to the evaluation that clicked is lost, the
            // next attempt finds the step marked done instead of clicking again (or failing on
            // an element the click took away). The click itself runs after the evaluation
            // returns, since its handler reaches the app through a synchronous request of its
            // own.
            let body = format!(
                "window.__e2eClicked = window.__e2eClicked || {{}};
                 if (window.__e2eClicked[{line}]) return true;
                 if (!el || el.disabled) return false;
                 window.__e2eClicked[{line}] = true; setTimeout(() => el.click(), 0); return true;"
            );
            until_on(&format!("click {sel}"), sel, &body).await
        }
        Step::Fill(sel, text) => {
            let body = format!(
                "if (!el) return false; el.focus(); el.value = {};
                 el.dispatchEvent(new Event('input', {{ bubbles: true }}));
                 el.dispatchEvent(new Event('change', {{ bubbles: true }})); return true;",
                js(text)
            );
            until_on(&format!("fill {sel}"), sel, &body).await
        }
        Step::Expect(sel, text) => {
            let body = format!("return !!el && el.textContent.includes({});", js(text));
            until_on(&format!("expect {sel} to contain {text:?}"), sel, &body).await
        }
        Step::Scroll(sel) => {
            until_on(
                &format!("scroll to {sel}"),
                sel,
                "if (!el) return false; el.scrollIntoView(); return true;",
            )
            .await
        }
        Step::Shot(name) => {
            // Let the webview paint the last change first.
            tokio::time::sleep(Duration::from_millis(400)).await;
            let cmd = script.shot_cmd.replace("{}", name);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let run = cmd.clone();
            std::thread::spawn(move || {
                let _ = tx.send(
                    std::process::Command::new("sh")
                        .arg("-c")
                        .arg(&run)
                        .status(),
                );
            });
            let status = rx
                .await
                .map_err(|e| format!("{cmd}: {e}"))?
                .map_err(|e| format!("{cmd}: {e}"))?;
            if status.success() {
                println!("e2e: screenshot {name}");
                Ok(())
            } else {
                Err(format!("{cmd}: {status}"))
            }
        }
        Step::Sleep(ms) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            Ok(())
        }
        Step::Ready => {
            println!(
                "e2e: ready after {} ms",
                script.started.elapsed().as_millis()
            );
            Ok(())
        }
    }
}

/// The desktop root: the app, plus the script driver when there is one.
#[component]
pub fn Root() -> Element {
    let driver: Driver = use_context();
    use_future(move || {
        let script = driver.0.clone();
        async move {
            let Some(script) = script else { return };
            for (line, step) in &script.steps {
                if let Err(e) = run_step(&script, *line, step).await {
                    eprintln!("e2e: line {line}: {e}");
                    eprintln!("e2e: the screen shows: {}", screen_text().await);
                    let shot = Step::Shot(format!("failed-line-{line}"));
                    if let Err(e) = run_step(&script, *line, &shot).await {
                        eprintln!("e2e: {e}");
                    }
                    std::process::exit(1);
                }
            }
            println!(
                "e2e: script passed ({} evaluations came back without an answer and were retried)",
                LOST.load(std::sync::atomic::Ordering::Relaxed)
            );
            std::process::exit(0);
        }
    });
    rsx! { crate::App {} }
}
