//! The dashboard in a real browser. Debian's headless Chromium (installed by
//! scripts/chromium.sh) opens `/` and is driven over the DevTools protocol, so the checks read
//! the live DOM of one page instance as it changes:
//! - a real `pinstream run` (emulator): the page loads, shows the run's counters, and keeps
//!   updating them by itself (same page, no reload: the event stream);
//! - a server in this process over an `AggregateStore` we publish into: every aggregate card
//!   renders its rows as a table and a chart, and a new publication shows up without reload.
//!
//! `--dump-dom` cannot do this: an open event stream keeps `--virtual-time-budget` from
//! ever expiring, and without it the DOM is dumped before the first fetch returns.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use pinstream::analytics::{AggregateRow, AggregateStore, Cell};
use pinstream::serve::{AppState, serve_on};
use pinstream::stats::Stats;
use serde_json::{Value, json};

use crate::support::pinstream;

#[test]
fn dashboard_shows_a_live_run_and_updates_by_itself() {
    let Some(chromium) = chromium() else { return };
    let lake = tempfile::tempdir().unwrap();
    let addr = free_address();
    let run = pinstream()
        .args(["run", "--from", "emulator:seed=1,rate=2000", "--lake"])
        .arg(lake.path())
        .args(["--batch-interval", "300ms", "--http", &addr.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _run = KillOnDrop(run);
    wait_for_health(addr);

    let page = Browser::open(chromium, &format!("http://{addr}/"));
    // Loaded: the script ran and built every aggregate card.
    page.wait_until("document.querySelectorAll('section.agg').length === 11");
    assert_eq!(page.eval("document.title"), "pinstream · live analytics");
    // Data from the run: the counters and the throughput chart (two samples or more).
    page.wait_until(
        "Number(document.getElementById('throughput').dataset.recordsIn) > 0 \
         && document.querySelector('#throughput-chart svg polyline') !== null \
         && document.querySelector('#streams-table tbody tr') !== null",
    );
    let shown = page.eval("document.querySelector('#kpi-records_in .value').textContent");
    let shown: u64 = shown.as_str().unwrap().replace(',', "").parse().unwrap();
    assert!(shown > 0, "records in shown: {shown}");
    assert_eq!(
        page.eval("document.querySelector('#kpi-records_in .value').textContent"),
        page.eval("new Intl.NumberFormat('en-US').format(Number(document.getElementById('throughput').dataset.recordsIn))")
    );

    // Updates by itself: the same page instance (the marker survives) shows more records and
    // more updates a few seconds later.
    page.eval("window.__same_page = true");
    let records = |page: &Browser| -> u64 {
        let value = page.eval("document.getElementById('throughput').dataset.recordsIn");
        value.as_str().unwrap().parse().unwrap()
    };
    let updates = |page: &Browser| -> u64 {
        page.eval("Number(document.body.dataset.updates)")
            .as_u64()
            .unwrap()
    };
    let (records_before, updates_before) = (records(&page), updates(&page));
    page.wait_until(&format!(
        "Number(document.getElementById('throughput').dataset.recordsIn) > {records_before} \
         && Number(document.body.dataset.updates) >= {} ",
        updates_before + 2
    ));
    assert_eq!(page.eval("window.__same_page === true"), true);
    assert!(records(&page) > records_before);
    assert!(updates(&page) >= updates_before + 2);
    assert_eq!(
        page.eval("document.getElementById('dot').className"),
        "dot live"
    );
    // Aggregate cards agree with the store, whatever it holds at this point of the run.
    page.wait_until(&cards_match_api());
    page.screenshot(&screenshot_path("dashboard-run.png"));
}

#[test]
fn dashboard_renders_every_published_aggregate_and_follows_new_versions() {
    let Some(chromium) = chromium() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let store = AggregateStore::new();
    for (name, rows) in sample_aggregates() {
        assert!(
            store.publish(name, rows.into_iter().map(AggregateRow::from).collect()),
            "{name}"
        );
    }
    let stats = std::sync::Arc::new(Stats::default());
    Stats::add(&stats.records_in, 12_345);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(serve_on(
        listener,
        AppState::new(store.clone(), stats),
        async move {
            let _ = stopped.await;
        },
    ));

    let page = Browser::open(chromium, &format!("http://{addr}/"));
    page.wait_until("document.querySelectorAll('section.agg').length === 11");
    // Every card: a table with all its rows and a chart (an SVG, or q8's matrix, or q3b's line).
    page.wait_until(&cards_match_api());
    for (name, rows) in sample_aggregates() {
        let card = format!("document.getElementById('agg-{name}')");
        let table_rows = page.eval(&format!(
            "{card}.querySelectorAll('table.aggregate-rows tbody tr').length"
        ));
        assert_eq!(table_rows, rows.len(), "{name}");
        let chart = page.eval(&format!(
            "{card}.querySelector('.chart').children.length > 0 \
             && {card}.querySelector('.chart .empty') === null"
        ));
        assert_eq!(chart, true, "{name} has no chart");
    }
    let q1 =
        page.eval("document.querySelector('#agg-q1_popular_category_by_country table').innerText");
    assert!(q1.as_str().unwrap().contains("India"), "{q1}");
    let bars = page.eval("document.querySelectorAll('#agg-trending_categories svg rect').length");
    assert_eq!(bars, 4);

    // A new version reaches the open page through the event stream.
    page.eval("window.__same_page = true");
    let text = |s: &str| Cell::Text(Some(s.into()));
    store.publish(
        "trending_categories",
        vec![
            [text("vehicles"), Cell::Long(99)].into(),
            [text("art"), Cell::Long(41)].into(),
        ],
    );
    page.wait_until(
        "document.getElementById('agg-trending_categories').dataset.version === '2' \
         && document.querySelector('#agg-trending_categories tbody').innerText.includes('vehicles')",
    );
    assert_eq!(page.eval("window.__same_page === true"), true);
    assert_eq!(
        page.eval("document.querySelectorAll('#agg-trending_categories tbody tr').length"),
        2
    );
    store.publish(
        "trending_categories",
        vec![
            [text("vehicles"), Cell::Long(120)].into(),
            [text("art"), Cell::Long(64)].into(),
            [text("travel"), Cell::Long(51)].into(),
            [text("beauty"), Cell::Long(33)].into(),
            [text("diy-and-crafts"), Cell::Long(18)].into(),
        ],
    );
    page.wait_until("document.querySelectorAll('#agg-trending_categories tbody tr').length === 5");
    page.screenshot(&screenshot_path("dashboard-aggregates.png"));

    drop(page);
    stop.send(()).unwrap();
    runtime.block_on(server).unwrap().unwrap();
}

/// JS: every card's `data-rows` and table equal the API's row count for it.
fn cards_match_api() -> String {
    "(async () => {
        const list = (await (await fetch('/api/v1/aggregates')).json()).aggregates;
        return list.every((a) => {
          const card = document.getElementById('agg-' + a.name);
          const rows = card.querySelectorAll('table.aggregate-rows tbody tr').length;
          return Number(card.dataset.version) === a.version
            && Number(card.dataset.rows) === a.rows && rows === a.rows;
        });
      })()"
        .to_owned()
}

/// A row or more for every aggregate, shaped like the real ones.
fn sample_aggregates() -> Vec<(&'static str, Vec<Vec<Cell>>)> {
    let t = |s: &str| Cell::Text(Some(s.into()));
    let l = Cell::Long;
    let d = Cell::Double;
    vec![
        (
            "q1_popular_category_by_country",
            vec![
                vec![t("India"), t("art"), l(14)],
                vec![t("Brazil"), t("travel"), l(9)],
                vec![t("Canada"), t("art"), l(7)],
                vec![t("France"), t("beauty"), l(6)],
                vec![t("Japan"), t("diy-and-crafts"), l(5)],
            ],
        ),
        (
            "q2_popular_category_by_year",
            (2018..=2022)
                .zip(["art", "travel", "beauty", "art", "vehicles"])
                .map(|(year, category)| vec![l(year), t(category), l(100 + year % 7 * 13)])
                .collect(),
        ),
        (
            "q3_top_user_by_country",
            vec![
                vec![t("India"), t("Tastemade"), l(8_000_000)],
                vec![t("Brazil"), t("Buzzfeed Tasty"), l(5_300_000)],
                vec![t("Canada"), t("Country Living"), l(1_200_000)],
            ],
        ),
        ("q3b_top_country", vec![vec![t("India"), l(8_000_000)]]),
        (
            "q4_popular_category_by_age_group",
            vec![
                vec![t("18-24"), t("mens-fashion"), l(40)],
                vec![t("25-35"), t("travel"), l(31)],
                vec![t("36-50"), t("vehicles"), l(22)],
                vec![t("+50"), t("quotes"), l(9)],
            ],
        ),
        (
            "q5_median_followers_by_age_group",
            vec![
                vec![t("18-24"), d(68_000.0)],
                vec![t("25-35"), d(24_500.5)],
                vec![t("36-50"), d(5_100.0)],
                vec![t("+50"), d(1_000.0)],
            ],
        ),
        (
            "q6_users_joined_by_year",
            (2015..=2020)
                .map(|year| vec![l(year), l(120 + (year % 5) * 37)])
                .collect(),
        ),
        (
            "q7_median_followers_by_join_year",
            (2015..=2020)
                .map(|year| vec![l(year), d(1000.0 * (2021 - year) as f64)])
                .collect(),
        ),
        (
            "q8_median_followers_by_age_group_and_join_year",
            ["18-24", "25-35", "36-50", "+50"]
                .iter()
                .enumerate()
                .flat_map(|(k, group)| {
                    (2015..=2017).map(move |year| {
                        vec![
                            t(group),
                            l(year),
                            d(50_000.0 / (k + 1) as f64 - year as f64),
                        ]
                    })
                })
                .collect(),
        ),
        (
            "profile_popularity",
            [
                ("Tastemade", 8_000_000, 12),
                ("Buzzfeed Tasty", 5_300_000, 9),
                ("Country Living", 1_200_000, 4),
                ("Apartment Therapy", 950_000, 7),
                ("Bored Panda", 730_000, 3),
            ]
            .iter()
            .map(|(name, followers, posts)| vec![t(name), l(*followers), l(*posts)])
            .collect(),
        ),
        (
            "trending_categories",
            vec![
                vec![t("art"), l(41)],
                vec![t("travel"), l(33)],
                vec![t("beauty"), l(20)],
                vec![Cell::Text(None), l(2)],
            ],
        ),
    ]
}

// ---- helpers ------------------------------------------------------------------------------

/// Chromium's path, installed by scripts/chromium.sh; `None` (the test is skipped, loudly)
/// only when it cannot be installed on this machine.
fn chromium() -> Option<&'static Path> {
    static CHROMIUM: OnceLock<Option<PathBuf>> = OnceLock::new();
    CHROMIUM
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/chromium.sh");
            let output = Command::new("bash").arg(script).output().unwrap();
            if !output.status.success() {
                eprintln!(
                    "SKIPPED: the dashboard browser tests: chromium cannot be installed here:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                return None;
            }
            Some(PathBuf::from(
                String::from_utf8(output.stdout).unwrap().trim(),
            ))
        })
        .as_deref()
}

fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("pinstream-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A plain HTTP/1.1 GET on loopback; `(status, body)`. Reads the body by its
/// Content-Length when there is one (Chromium's DevTools server keeps the connection open).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk)?;
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if n == 0 || length.is_some_and(|length| body.len() >= length) {
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
                return Ok((status.unwrap_or(0), body.to_owned()));
            }
        } else if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

fn wait_for_health(addr: SocketAddr) {
    let started = Instant::now();
    loop {
        if let Ok((200, body)) = http_get(addr, "/healthz") {
            assert!(body.contains("\"ok\""), "{body}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no /healthz on {addr} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium showing one page, driven over the DevTools protocol.
struct Browser {
    process: KillOnDrop,
    socket: std::cell::RefCell<Socket>,
    next_id: std::cell::Cell<u64>,
    _profile: tempfile::TempDir,
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

impl Browser {
    /// Starts Chromium on `url` (a fresh profile, nothing reaching out to the network).
    fn open(chromium: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(profile.path().join("chromium.log")).unwrap();
        let process = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1440,1000",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let process = KillOnDrop(process);
        // Chromium writes the port it took into the profile.
        let active = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let port: u16 = loop {
            if let Some(port) = std::fs::read_to_string(&active)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse().ok())
            {
                break port;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromium did not start: {}",
                std::fs::read_to_string(profile.path().join("chromium.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let devtools = SocketAddr::from(([127, 0, 0, 1], port));
        let socket = loop {
            let (_, body) = http_get(devtools, "/json/list").unwrap();
            let targets: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let page = targets.as_array().and_then(|list| {
                list.iter()
                    .find(|t| t["type"] == "page" && t["url"].as_str() == Some(url))
            });
            if let Some(ws) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
                break tungstenite::connect(ws).unwrap().0;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no page for {url}: {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let browser = Browser {
            process,
            socket: std::cell::RefCell::new(socket),
            next_id: std::cell::Cell::new(1),
            _profile: profile,
        };
        browser.call("Runtime.enable", json!({}));
        browser
    }

    /// One DevTools command; its `result`.
    fn call(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut socket = self.socket.borrow_mut();
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        socket.send(tungstenite::Message::text(message)).unwrap();
        loop {
            let reply = read_json(&mut socket);
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of a JS expression in the page (promises awaited).
    fn eval(&self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Polls `condition` (JS) until true; fails after 30 s with the page's text.
    fn wait_until(&self, condition: &str) {
        let started = Instant::now();
        while self.eval(condition) != true {
            if started.elapsed() > Duration::from_secs(30) {
                let text = self.eval("document.body.innerText");
                panic!(
                    "not true after 30 s: {condition}\npage:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG of the whole page, for people to look at.
    fn screenshot(&self, path: &Path) {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let clip = json!({
            "x": 0, "y": 0, "scale": 1,
            "width": size["width"].as_f64().unwrap_or(1440.0),
            "height": size["height"].as_f64().unwrap_or(1000.0),
        });
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "clip": clip, "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("dashboard screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.socket.borrow_mut().close(None);
        let _ = &self.process; // killed (TERM, then KILL) by its own drop
    }
}

fn read_json(socket: &mut Socket) -> Value {
    loop {
        match socket.read().unwrap() {
            tungstenite::Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            tungstenite::Message::Binary(bytes) => return serde_json::from_slice(&bytes).unwrap(),
            _ => continue,
        }
    }
}
