//! A small Chrome DevTools Protocol driver for the tests: headless Chromium, driven over
//! `--remote-debugging-pipe`, so a test can load a page, type, click, wait for what its
//! JavaScript renders, see every console error, and take screenshots.
//!
//! Why a pipe and not a WebSocket: pipe mode needs no port (nothing to pick, nothing to race
//! other tests for, nothing to parse from stderr) and no WebSocket client, so the driver adds
//! no crate. Chromium reads commands from its fd 3 and writes responses and events to its
//! fd 4, each message one JSON text followed by a NUL byte; it exits when fd 3 reaches EOF.
//!
//! One connection is shared by the [`Browser`] and its [`Page`]s: a reader task splits fd 4
//! on NUL, hands each response (`id`) to the command waiting for it, and keeps every event
//! (keyed by the page's flat `sessionId`), from which [`Page::errors`] reads. Every wait is
//! bounded: a command that Chromium does not answer within [`COMMAND_TIMEOUT`] panics with
//! its method's name, and a browser that dies panics the waiting command with the tail of
//! its stderr.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// How long Chromium may take to answer one command (or to load a page) before the test
/// panics naming the method.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The viewport [`Browser::open`] sets before loading, so layouts (and screenshots) do not
/// depend on headless Chromium's default window size.
pub const DEFAULT_VIEWPORT: (u32, u32) = (1280, 800);

/// How much of Chromium's stderr is kept to explain a browser that died.
const STDERR_TAIL: usize = 16 * 1024;

/// A headless Chromium. Killed when the last handle to it (this or one of its pages) drops.
pub struct Browser {
    conn: Arc<Connection>,
}

/// One window of a [`Browser`], attached as a flat session: Runtime, Log and Page events are on,
/// so [`Page::errors`] sees everything from the first navigation.
pub struct Page {
    conn: Arc<Connection>,
    session: String,
}

/// What the reader task and the command senders share.
struct Shared {
    /// Commands sent and not answered yet: id → the full response message.
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    /// Every event so far, in arrival order (a page's carry its `sessionId`).
    events: Mutex<Vec<Value>>,
    /// Bumped after each event (and when the pipe closes), to wake event waiters.
    bumps: watch::Sender<u64>,
    /// Why the reader stopped, once it has: Chromium closed fd 4, or it was unreadable.
    closed: Mutex<Option<String>>,
    /// The last [`STDERR_TAIL`] bytes of Chromium's stderr.
    stderr: Mutex<Vec<u8>>,
}

struct Connection {
    shared: Arc<Shared>,
    next_id: AtomicU64,
    /// Our end of the browser's fd 3 (EOF there asks Chromium to exit).
    commands: tokio::sync::Mutex<pipe::Sender>,
    child: Child,
    _profile: TempDir,
}

impl Drop for Connection {
    /// Kills Chromium's whole process group before the profile is removed: killing the
    /// browser process alone (`kill_on_drop`) leaves its helpers a moment to write into the
    /// profile (the network service flushes its HTTP cache index), which then outlives the
    /// removal in /tmp. (Its crash handlers start their own sessions, write nothing there,
    /// and exit with the browser.)
    fn drop(&mut self) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Browser {
    /// Starts Debian's `chromium` headless with a fresh profile, speaking CDP over fds 3/4.
    ///
    /// Panics if Chromium is not installed: the console's tests need a real browser.
    pub async fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("a profile dir");
        // CLOEXEC pipes (std::io::pipe), so no other test's child inherits them: a stray copy
        // of the browser's write end would hide its death from the reader (no EOF).
        let (browser_reads, commands) = std::io::pipe().expect("a pipe");
        let (events, browser_writes) = std::io::pipe().expect("a pipe");
        // The child's ends, moved above fd 4: dup2 onto 3 and 4 then never has a source that
        // is already 3 or 4 (dup2(3, 3) is a no-op that would leave FD_CLOEXEC set), nor
        // overwrites the other source. These stay CLOEXEC; only the dup2 copies survive exec.
        let above_4 = |fd: OwnedFd| rustix::io::fcntl_dupfd_cloexec(&fd, 10).expect("dup");
        let browser_reads = above_4(browser_reads.into());
        let browser_writes = above_4(browser_writes.into());
        let (reads_fd, writes_fd) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());

        let mut command = tokio::process::Command::new("chromium");
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                // No throttling of timers or rendering in a page Chromium deems hidden.
                "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows",
                "--disable-renderer-backgrounding",
                // Screenshots without scroll bars.
                "--hide-scrollbars",
                "--mute-audio",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so that dropping the browser can kill its helpers too
            // (zygotes, renderers, the network service), not just the browser process.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: between fork and exec the closure only calls dup2 (async-signal-safe; rustix
        // makes the raw syscall) and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                for (source, target) in [(reads_fd, 3), (writes_fd, 4)] {
                    // `target` need not be open; ManuallyDrop: the wrapper only names it for
                    // rustix's signature and must never close it.
                    let mut target = std::mem::ManuallyDrop::new(OwnedFd::from_raw_fd(target));
                    rustix::io::dup2(BorrowedFd::borrow_raw(source), &mut target)?;
                }
                Ok(())
            });
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("chromium is not installed: run .ci/run, or `apt-get install chromium`")
            }
            Err(e) => panic!("cannot start chromium: {e}"),
        };
        // The child has its copies now; ours would keep the pipes open past its death.
        drop((browser_reads, browser_writes));

        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            bumps: watch::Sender::new(0),
            closed: Mutex::new(None),
            stderr: Mutex::new(Vec::new()),
        });
        let events = pipe::Receiver::from_owned_fd(OwnedFd::from(events)).expect("a pipe");
        let commands = pipe::Sender::from_owned_fd(OwnedFd::from(commands)).expect("a pipe");
        tokio::spawn(read_messages(events, shared.clone()));
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(keep_stderr_tail(stderr, shared.clone()));
        Browser {
            conn: Arc::new(Connection {
                shared,
                next_id: AtomicU64::new(1),
                commands: tokio::sync::Mutex::new(commands),
                child,
                _profile: profile,
            }),
        }
    }

    /// Opens `url` in a new window and waits for its load event.
    ///
    /// A window, not a tab: a tab behind a newer one is hidden, and a hidden page neither
    /// paints nor runs requestAnimationFrame, so `Page.captureScreenshot` on it never
    /// answers. The window starts on about:blank so that Runtime, Log and Page events, and
    /// the [`DEFAULT_VIEWPORT`], are on before the page's first script runs.
    pub async fn open(&self, url: &str) -> Page {
        let conn = &self.conn;
        let target = conn
            .call(
                None,
                "Target.createTarget",
                json!({"url": "about:blank", "newWindow": true}),
            )
            .await;
        let target_id = target["targetId"].clone();
        let attached = conn
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("a sessionId")
            .to_owned();
        let page = Page {
            conn: conn.clone(),
            session,
        };
        for domain in ["Runtime", "Log", "Page"] {
            page.call(&format!("{domain}.enable"), json!({})).await;
        }
        page.call("Page.setLifecycleEventsEnabled", json!({"enabled": true}))
            .await;
        let (width, height) = DEFAULT_VIEWPORT;
        page.viewport(width, height, false).await;
        page.goto(url).await;
        page
    }
}

impl Page {
    /// Navigates to `url` and waits (up to [`COMMAND_TIMEOUT`]) for its load event.
    ///
    /// Waits for the `load` lifecycle event of the navigation's own loader rather than the
    /// next `Page.loadEventFired`: a late load event of the previous document (about:blank
    /// in a new window) cannot be mistaken for this one's.
    pub async fn goto(&self, url: &str) {
        let from = self.conn.shared.events.lock().unwrap().len();
        let navigated = self.call("Page.navigate", json!({"url": url})).await;
        if let Some(error) = navigated["errorText"].as_str() {
            panic!("navigating to {url} failed: {error}");
        }
        let Some(loader) = navigated["loaderId"].as_str() else {
            return; // same-document navigation (a #fragment): nothing loads
        };
        self.wait_event(from, &format!("the load event of {url}"), |event| {
            event["method"] == "Page.lifecycleEvent"
                && event["params"]["name"] == "load"
                && event["params"]["loaderId"] == loader
        })
        .await;
    }

    /// Evaluates the JavaScript expression `js` in the page (awaiting it if it is a promise)
    /// and returns its value as JSON (`null` for undefined; NaN, Infinity, -0 and bigints as
    /// strings). Panics with the exception's text if it throws.
    pub async fn eval(&self, js: &str) -> Value {
        self.evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("{js}\nthrew {e}"))
    }

    /// Waits until the expression `js_predicate` evaluates to `true` (exactly: not merely
    /// truthy), polling every 100 ms. A predicate that throws counts as not yet true, since
    /// the elements it looks at may not exist yet.
    ///
    /// On timeout, panics showing the predicate, what it last returned or threw, the page's
    /// text and its errors so far: enough to see what the page rendered instead.
    pub async fn wait_for(&self, js_predicate: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.evaluate(js_predicate).await {
                Ok(Value::Bool(true)) => return,
                Ok(other) => format!("returned {other}"),
                Err(e) => format!("threw {e}"),
            };
            if Instant::now() >= deadline {
                let text = self
                    .evaluate("document.body ? document.body.innerText : ''")
                    .await
                    .unwrap_or_else(|e| Value::String(format!("(unreadable: {e})")));
                panic!(
                    "timed out after {timeout:?} waiting for {js_predicate}\n\
                     it last {last}\n\
                     page text: {}\n\
                     errors: {:#?}",
                    truncate(text.as_str().unwrap_or_default(), 2000),
                    self.errors()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the page reported as an error so far, one line each: uncaught exceptions
    /// (and unhandled rejections), `console.error` and failed `console.assert` calls, and the
    /// browser's own error log entries (failed resource loads, CSP violations, ...), with
    /// the URL they came from.
    pub fn errors(&self) -> Vec<String> {
        let events = self.conn.shared.events.lock().unwrap();
        events
            .iter()
            .filter(|event| event["sessionId"] == self.session.as_str())
            .filter_map(describe_error)
            .collect()
    }

    /// Panics listing [`Page::errors`] if there are any.
    pub fn assert_no_errors(&self) {
        let errors = self.errors();
        assert!(errors.is_empty(), "the page reported errors: {errors:#?}");
    }

    /// Clicks the first element matching `css_selector` (`element.click()`: the click event
    /// and default action, no mouse movement). Panics if nothing matches or it is disabled.
    pub async fn click(&self, css_selector: &str) {
        self.on_element(
            css_selector,
            "if (el.disabled) throw new Error('the element is disabled'); el.click();",
        )
        .await;
    }

    /// Runs the JavaScript statements `body` with `el` the first element matching
    /// `css_selector`; panics naming the selector if nothing matches.
    async fn on_element(&self, css_selector: &str, body: &str) {
        let selector = js_string(css_selector);
        self.eval(&format!(
            "(() => {{
                const el = document.querySelector({selector});
                if (!el) throw new Error('no element matches ' + {selector});
                {body}
            }})()"
        ))
        .await;
    }

    /// Focuses the first element matching `css_selector` and presses Ctrl+Enter there as a
    /// keyboard would (trusted key events through the browser's input pipeline, so a
    /// handler that does not prevent it gets the newline typed too).
    pub async fn ctrl_enter(&self, css_selector: &str) {
        self.on_element(css_selector, "el.focus();").await;
        const CTRL: u32 = 2;
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "modifiers": CTRL, "key": "Enter", "code": "Enter",
                       "windowsVirtualKeyCode": 13, "text": "\r"}),
            )
            .await;
        }
    }

    /// Replaces the value of the first input (or textarea, or select) matching
    /// `css_selector` with `text`, as typing would: focuses it, sets the value, and
    /// dispatches bubbling `input` and `change` events. Panics if nothing matches.
    pub async fn type_into(&self, css_selector: &str, text: &str) {
        let text = js_string(text);
        self.on_element(
            css_selector,
            &format!(
                "el.focus();
                el.value = {text};
                el.dispatchEvent(new Event('input', {{bubbles: true}}));
                el.dispatchEvent(new Event('change', {{bubbles: true}}));"
            ),
        )
        .await;
    }

    /// Sets the viewport to `width`×`height` CSS pixels at a device scale factor of 1, as a
    /// phone (`mobile`: the page's meta viewport applies; a page without one lays out 980 px
    /// wide, as on a real phone) or as a desktop.
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// Makes `prefers-color-scheme` match dark (or light) for this page.
    pub async fn set_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    /// Writes a PNG of the whole page (beyond the viewport if it is taller) to `path`.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        // Without a clip, captureBeyondViewport alone still captures just the viewport: the
        // clip is the document's size (at least the viewport's).
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
        let size = |content: &str, viewport: &str| {
            let content = metrics["cssContentSize"][content].as_f64().unwrap_or(0.0);
            let viewport = metrics["cssLayoutViewport"][viewport]
                .as_f64()
                .unwrap_or(0.0);
            content.max(viewport).ceil()
        };
        let clip = json!({
            "x": 0, "y": 0,
            "width": size("width", "clientWidth"),
            "height": size("height", "clientHeight"),
            "scale": 1,
        });
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot data");
        let path = path.as_ref();
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// `Runtime.evaluate`, with a thrown exception as `Err(its description)`.
    async fn evaluate(&self, js: &str) -> Result<Value, String> {
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(exception_text(details));
        }
        let result = &reply["result"];
        Ok(match result.get("unserializableValue") {
            Some(value) => value.clone(),
            None => result.get("value").cloned().unwrap_or(Value::Null),
        })
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        self.conn.call(Some(&self.session), method, params).await
    }

    /// The first event of this page at or after index `from` that `matches`, waiting for it
    /// up to [`COMMAND_TIMEOUT`].
    async fn wait_event(&self, from: usize, what: &str, matches: impl Fn(&Value) -> bool) {
        let shared = &self.conn.shared;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        // Subscribed before looking, so an event arriving in between still wakes us.
        let mut bumps = shared.bumps.subscribe();
        loop {
            let found = shared.events.lock().unwrap()[from..]
                .iter()
                .any(|event| event["sessionId"] == self.session.as_str() && matches(event));
            if found {
                return;
            }
            if let Some(reason) = shared.closed.lock().unwrap().clone() {
                panic!(
                    "chromium closed the DevTools pipe ({reason}) before {what}\n{}",
                    shared.stderr_tail()
                );
            }
            if tokio::time::timeout_at(deadline, bumps.changed())
                .await
                .is_err()
            {
                panic!(
                    "no {what} within {COMMAND_TIMEOUT:?}; errors: {:#?}",
                    self.errors()
                );
            }
        }
    }
}

impl Connection {
    /// Sends `method` (to the browser, or to a page's flat session) and returns its result.
    /// Panics if Chromium reports an error, does not answer within [`COMMAND_TIMEOUT`], or
    /// dies first.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        let (answer, answered) = oneshot::channel();
        self.shared.pending.lock().unwrap().insert(id, answer);
        let died = |what: &str| -> ! {
            let reason = self.shared.closed.lock().unwrap().clone();
            panic!(
                "chromium {what} {method} ({}):\n{}",
                reason.unwrap_or_else(|| "still running".into()),
                self.shared.stderr_tail()
            )
        };
        let exchange = async {
            let sent = self.commands.lock().await.write_all(&bytes).await;
            if sent.is_err() {
                died("stopped reading commands before");
            }
            answered.await
        };
        let response = match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => died("closed the DevTools pipe before answering"),
            Err(_) => {
                self.shared.pending.lock().unwrap().remove(&id);
                panic!("chromium did not answer {method} within {COMMAND_TIMEOUT:?}")
            }
        };
        if let Some(error) = response.get("error") {
            panic!(
                "{method} {params} failed: {error}",
                params = message["params"]
            );
        }
        response["result"].clone()
    }
}

impl Shared {
    fn stderr_tail(&self) -> String {
        let stderr = self.stderr.lock().unwrap();
        // Without a D-Bus (containers, CI), Chromium logs dozens of lines about it: noise.
        let text = String::from_utf8_lossy(&stderr);
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.contains(":ERROR:dbus/"))
            .collect();
        format!(
            "chromium's stderr (tail, D-Bus noise left out):\n{}",
            lines.join("\n")
        )
    }
}

/// The reader task: splits Chromium's fd 4 on NUL; answers go to their command's waiter,
/// events are kept. On EOF or a read error, records why and drops every waiter (which then
/// panics with that reason).
async fn read_messages(mut events: pipe::Receiver, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let reason = loop {
        let n = match events.read(&mut chunk).await {
            Ok(0) => break "EOF".to_owned(),
            Ok(n) => n,
            Err(e) => break format!("read error: {e}"),
        };
        let start = buffer.len();
        buffer.extend_from_slice(&chunk[..n]);
        // Only the new bytes can hold a terminator not seen before.
        let mut from = 0;
        let mut search = start;
        while let Some(end) = buffer[search..].iter().position(|&b| b == 0) {
            let end = search + end;
            dispatch(&buffer[from..end], &shared);
            from = end + 1;
            search = from;
        }
        buffer.drain(..from);
    };
    *shared.closed.lock().unwrap() = Some(reason);
    shared.pending.lock().unwrap().clear();
    shared.bumps.send_modify(|n| *n += 1);
}

fn dispatch(message: &[u8], shared: &Shared) {
    let Ok(message) = serde_json::from_slice::<Value>(message) else {
        eprintln!(
            "browser: not JSON from chromium: {}",
            String::from_utf8_lossy(message)
        );
        return;
    };
    if let Some(id) = message["id"].as_u64() {
        if let Some(waiter) = shared.pending.lock().unwrap().remove(&id) {
            let _ = waiter.send(message);
        }
    } else if message.get("method").is_some() {
        shared.events.lock().unwrap().push(message);
        shared.bumps.send_modify(|n| *n += 1);
    }
}

async fn keep_stderr_tail(mut stderr: ChildStderr, shared: Arc<Shared>) {
    let mut chunk = vec![0; 8192];
    while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
        let mut tail = shared.stderr.lock().unwrap();
        tail.extend_from_slice(&chunk[..n]);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
    }
}

/// The line [`Page::errors`] shows for `event`, if it reports an error.
fn describe_error(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => {
            let details = &params["exceptionDetails"];
            Some(format!(
                "uncaught {}{}",
                exception_text(details),
                at(&details["url"], &details["lineNumber"])
            ))
        }
        "Runtime.consoleAPICalled" => {
            let kind = params["type"].as_str()?;
            if kind != "error" && kind != "assert" {
                return None;
            }
            let args: Vec<String> = params["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|arg| match &arg["value"] {
                    Value::String(s) => s.clone(),
                    Value::Null => arg["description"]
                        .as_str()
                        .or(arg["unserializableValue"].as_str())
                        .unwrap_or(arg["type"].as_str().unwrap_or("?"))
                        .to_owned(),
                    other => other.to_string(),
                })
                .collect();
            let frame = &params["stackTrace"]["callFrames"][0];
            Some(format!(
                "console.{kind}: {}{}",
                args.join(" "),
                at(&frame["url"], &frame["lineNumber"])
            ))
        }
        "Log.entryAdded" => {
            let entry = &params["entry"];
            if entry["level"] != "error" {
                return None;
            }
            Some(format!(
                "{} error: {}{}",
                entry["source"].as_str().unwrap_or("log"),
                entry["text"].as_str().unwrap_or_default(),
                at(&entry["url"], &entry["lineNumber"])
            ))
        }
        _ => None,
    }
}

/// ` (url:line)` with a 1-based line, or nothing without a URL.
fn at(url: &Value, line: &Value) -> String {
    match (url.as_str(), line.as_u64()) {
        (Some(url), Some(line)) if !url.is_empty() => format!(" ({url}:{})", line + 1),
        (Some(url), None) if !url.is_empty() => format!(" ({url})"),
        _ => String::new(),
    }
}

/// An exception's description (its message and stack) or, without one, CDP's summary.
fn exception_text(details: &Value) -> String {
    let exception = &details["exception"];
    exception["description"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            let value = &exception["value"];
            (!value.is_null()).then(|| value.to_string())
        })
        .unwrap_or_else(|| {
            details["text"]
                .as_str()
                .unwrap_or("an exception")
                .to_owned()
        })
}

/// `s` as a JavaScript string literal (JSON's string syntax is a subset of JavaScript's).
fn js_string(s: &str) -> String {
    serde_json::to_string(s).expect("JSON")
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}… ({} more bytes)", &s[..end], s.len() - end),
        None => s.to_owned(),
    }
}

// ------------------------------------------------------------------ self-test

/// Serves `html` at `/` (404 elsewhere) over plain HTTP/1.1, one request per connection.
async fn serve_page(html: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut byte).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&byte[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or_default();
                let (status, body) = match path {
                    "/" => ("200 OK", html),
                    _ => ("404 Not Found", "not found"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

const SELF_TEST_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>start</title>
<!-- No favicon request: Chromium would log its 404 as an error. -->
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { background: white; color: black; }
  @media (prefers-color-scheme: dark) { body { background: black; color: white; } }
</style></head>
<body>
<p>Name: <input id="name"> <button id="go" type="button">Go</button></p>
<script>
  let typed = "";
  document.getElementById("name").addEventListener("input", (e) => { typed = e.target.value; });
  document.getElementById("go").addEventListener("click", () => {
    console.error("boom");
    document.title = typed;
  });
</script>
</body></html>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_types_clicks_waits_sees_errors_and_takes_screenshots() {
    let addr = serve_page(SELF_TEST_PAGE).await;
    let browser = Browser::launch().await;
    let page = browser.open(&format!("http://{addr}/")).await;

    assert_eq!(page.eval("document.title").await, "start");
    assert_eq!(page.eval("innerWidth").await, DEFAULT_VIEWPORT.0);
    assert_eq!(
        page.eval("new Promise(r => setTimeout(() => r(6 * 7), 10))")
            .await,
        42,
        "eval awaits promises"
    );
    assert_eq!(page.eval("undefined").await, Value::Null);
    let thrown = page
        .evaluate("(() => { throw new Error('kaput') })()")
        .await
        .unwrap_err();
    assert!(thrown.contains("kaput"), "{thrown}");
    page.assert_no_errors();

    page.type_into("#name", "héllo \"world\"").await;
    page.click("#go").await;
    page.wait_for(
        r#"document.title === 'héllo "world"'"#,
        Duration::from_secs(5),
    )
    .await;
    let errors = page.errors();
    assert!(
        errors.iter().any(|e| e.contains("console.error: boom")),
        "{errors:#?}"
    );
    // The browser's own error log: a failed resource load, with its URL.
    assert_eq!(
        page.eval("fetch('/missing').then(r => r.status)").await,
        404
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !page.errors().iter().any(|e| e.contains("/missing")) {
        assert!(Instant::now() < deadline, "{:#?}", page.errors());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    page.set_dark(true).await;
    assert_eq!(
        page.eval("getComputedStyle(document.body).backgroundColor")
            .await,
        "rgb(0, 0, 0)"
    );
    page.viewport(400, 700, true).await;
    assert_eq!(page.eval("innerWidth").await, 400);

    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("page.png");
    page.screenshot(&path).await;
    let png = std::fs::read(&path).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
}
