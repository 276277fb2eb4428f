//! `plimsoll loadgen URL --rate R --duration SECS`: an open-loop HTTP load generator.
//!
//! Request `i` is sent at `i / R` seconds after the start whatever happened to the
//! earlier ones, each an HTTP/1.1 `GET` on a fresh TCP connection (`Connection:
//! close`) through hyper's client connection (`hyper::client::conn::http1`). A
//! request's latency runs from its *scheduled* send time to the end of its response
//! body, so time spent queued behind a slow sender or a slow server counts
//! (no coordinated omission).
//!
//! Reported: requests, OK (2xx) answers, errors by kind (`connect`, `timeout` — no full
//! answer within `--timeout` of the send —, `status` — an answer outside 2xx —, `io`),
//! the achieved send rate, latency percentiles of the OK requests, the longest run of
//! consecutive failed requests (by send order; first and last failure as seconds since
//! the start on the schedule), and how many OK answers had each distinct first line of
//! body (the demo app answers its hostname), at most [`MAX_BODIES`] distinct lines.

use crate::Status;
use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Distinct first lines of body kept; answers with others are counted together.
pub const MAX_BODIES: usize = 100;
/// Largest response body read.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Options of `plimsoll loadgen`.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The URL to GET (`http://HOST:PORT/PATH`).
    pub url: String,
    /// Requests per second.
    #[arg(long)]
    pub rate: f64,
    /// Seconds to send for.
    #[arg(long)]
    pub duration: f64,
    /// Seconds a request may take from its send to the end of its answer.
    #[arg(long, default_value_t = 2.0)]
    pub timeout: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection was not made (refused, unreachable, name not resolved).
    Connect,
    /// No full answer within the timeout.
    Timeout,
    /// An answer outside 2xx.
    Status,
    /// The connection broke (or the answer was not HTTP).
    Io,
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Scheduled send time, seconds since the start.
    pub scheduled_s: f64,
    /// `Ok((latency, first line of body))` for a 2xx answer.
    pub result: Result<(Duration, String), ErrorKind>,
}

/// Errors by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Errors {
    pub connect: u64,
    pub timeout: u64,
    pub status: u64,
    pub io: u64,
}

/// Latency percentiles of OK requests, milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// The longest run of consecutive failed requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureWindow {
    /// Requests in the run.
    pub failures: u64,
    /// Scheduled time of its first request, seconds since the start.
    pub first_s: f64,
    /// Scheduled time of its last request, seconds since the start.
    pub last_s: f64,
    /// `last_s - first_s`.
    pub seconds: f64,
}

/// The report (`--json` prints it as is).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    pub target_rate: f64,
    pub duration_s: f64,
    pub requests: u64,
    pub ok: u64,
    pub errors: Errors,
    /// Requests sent per second of sending.
    pub achieved_rate: f64,
    /// Latest a request was sent after its scheduled time, milliseconds.
    pub max_send_lag_ms: f64,
    /// `None` when no request was OK.
    pub latency_ms: Option<Latency>,
    /// `None` when no request failed.
    pub longest_failure_window: Option<FailureWindow>,
    /// Distinct first lines of OK bodies (at most [`MAX_BODIES`]).
    pub distinct_bodies: usize,
    /// OK answers per first line of body.
    pub bodies: BTreeMap<String, u64>,
    /// OK answers whose first line was past the [`MAX_BODIES`] cap.
    pub other_bodies: u64,
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sums outcomes up (in any order; they are sorted by schedule here).
pub fn summarize(
    url: &str,
    target_rate: f64,
    duration_s: f64,
    mut outcomes: Vec<Outcome>,
    send_span_s: f64,
    max_send_lag: Duration,
) -> Report {
    outcomes.sort_by(|a, b| a.scheduled_s.total_cmp(&b.scheduled_s));
    let mut errors = Errors::default();
    let mut latencies = Vec::new();
    let mut bodies: BTreeMap<String, u64> = BTreeMap::new();
    let mut other_bodies = 0;
    let mut longest: Option<FailureWindow> = None;
    let mut run: Option<FailureWindow> = None;
    for o in &outcomes {
        match &o.result {
            Ok((latency, line)) => {
                latencies.push(latency.as_secs_f64() * 1000.0);
                if let Some(n) = bodies.get_mut(line) {
                    *n += 1;
                } else if bodies.len() < MAX_BODIES {
                    bodies.insert(line.clone(), 1);
                } else {
                    other_bodies += 1;
                }
                run = None;
            }
            Err(kind) => {
                *match kind {
                    ErrorKind::Connect => &mut errors.connect,
                    ErrorKind::Timeout => &mut errors.timeout,
                    ErrorKind::Status => &mut errors.status,
                    ErrorKind::Io => &mut errors.io,
                } += 1;
                let r = run.get_or_insert(FailureWindow {
                    failures: 0,
                    first_s: o.scheduled_s,
                    last_s: o.scheduled_s,
                    seconds: 0.0,
                });
                r.failures += 1;
                r.last_s = o.scheduled_s;
                r.seconds = r.last_s - r.first_s;
                if longest.as_ref().is_none_or(|l| r.failures > l.failures) {
                    longest = Some(r.clone());
                }
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let requests = outcomes.len() as u64;
    Report {
        url: url.to_string(),
        target_rate,
        duration_s,
        requests,
        ok: latencies.len() as u64,
        errors,
        achieved_rate: if send_span_s > 0.0 {
            requests as f64 / send_span_s
        } else {
            0.0
        },
        max_send_lag_ms: max_send_lag.as_secs_f64() * 1000.0,
        latency_ms: (!latencies.is_empty()).then(|| Latency {
            p50: quantile(&latencies, 0.50),
            p90: quantile(&latencies, 0.90),
            p99: quantile(&latencies, 0.99),
            p999: quantile(&latencies, 0.999),
            max: latencies[latencies.len() - 1],
        }),
        longest_failure_window: longest,
        distinct_bodies: bodies.len(),
        bodies,
        other_bodies,
    }
}

/// The text form of a report.
pub fn render(r: &Report) -> String {
    let mut s = format!(
        "{} requests to {} ({:.1}/s for {:.1} s)\n",
        r.requests, r.url, r.target_rate, r.duration_s
    );
    let e = &r.errors;
    s += &format!(
        "ok {}  errors {} (connect {}, timeout {}, status {}, io {})\n",
        r.ok,
        e.connect + e.timeout + e.status + e.io,
        e.connect,
        e.timeout,
        e.status,
        e.io
    );
    s += &format!(
        "achieved rate {:.1}/s, latest send {:.1} ms behind schedule\n",
        r.achieved_rate, r.max_send_lag_ms
    );
    match &r.latency_ms {
        Some(l) => {
            s += &format!(
                "latency ms  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
                l.p50, l.p90, l.p99, l.p999, l.max
            )
        }
        None => s += "latency ms  - (no OK request)\n",
    }
    match &r.longest_failure_window {
        Some(w) => {
            s += &format!(
                "longest failure run: {} requests from {:.3} s to {:.3} s ({:.3} s)\n",
                w.failures, w.first_s, w.last_s, w.seconds
            )
        }
        None => s += "no failed request\n",
    }
    s += &format!("{} distinct answers:\n", r.distinct_bodies);
    for (line, n) in &r.bodies {
        s += &format!("  {n:>8}  {line}\n");
    }
    if r.other_bodies > 0 {
        s += &format!("  {:>8}  (others past {MAX_BODIES})\n", r.other_bodies);
    }
    s
}

/// Host, port and path-and-query of an `http://` URL.
fn target(url: &str) -> anyhow::Result<(String, u16, String)> {
    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("{url:?}: only http:// URLs are supported");
    }
    let host = uri.host().context("the URL has no host")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok((host, uri.port_u16().unwrap_or(80), path))
}

/// One GET: the first line of a 2xx answer's body, or why not.
async fn get(host: &str, port: u16, path: &str) -> Result<String, ErrorKind> {
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_util::rt::TokioIo;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|_| ErrorKind::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|_| ErrorKind::Io)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let req = hyper::Request::get(path)
        .header("Host", authority)
        .header("Connection", "close")
        .header("User-Agent", "plimsoll-loadgen")
        .body(Empty::<hyper::body::Bytes>::new())
        .map_err(|_| ErrorKind::Io)?;
    let resp = sender.send_request(req).await.map_err(|_| ErrorKind::Io)?;
    let ok = resp.status().is_success();
    let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| ErrorKind::Io)?
        .to_bytes();
    if !ok {
        return Err(ErrorKind::Status);
    }
    let text = String::from_utf8_lossy(&body);
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// Sends on schedule and gathers the report.
async fn generate(args: &LoadgenArgs, host: String, port: u16, path: String) -> Report {
    let count = (args.rate * args.duration).floor() as u64;
    let timeout = Duration::from_secs_f64(args.timeout);
    let (host, path) = (std::sync::Arc::new(host), std::sync::Arc::new(path));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut max_lag = Duration::ZERO;
    let mut last_send = start;
    for i in 0..count {
        let scheduled = start + Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(scheduled).await;
        let now = Instant::now();
        max_lag = max_lag.max(now.saturating_duration_since(scheduled));
        last_send = now;
        let (host, path) = (host.clone(), path.clone());
        tasks.spawn(async move {
            let result = match tokio::time::timeout(timeout, get(&host, port, &path)).await {
                Ok(Ok(line)) => Ok((scheduled.elapsed(), line)),
                Ok(Err(kind)) => Err(kind),
                Err(_) => Err(ErrorKind::Timeout),
            };
            Outcome {
                scheduled_s: (scheduled - start).as_secs_f64(),
                result,
            }
        });
    }
    // Sending took the whole duration unless the sender fell behind.
    let span = args
        .duration
        .max((last_send - start).as_secs_f64() + 1.0 / args.rate);
    let mut outcomes = Vec::with_capacity(count as usize);
    while let Some(r) = tasks.join_next().await {
        if let Ok(o) = r {
            outcomes.push(o);
        }
    }
    summarize(&args.url, args.rate, args.duration, outcomes, span, max_lag)
}

/// The highest `--rate` (one process sending new connections cannot go much faster).
const MAX_RATE: f64 = 100_000.0;
/// The most requests one run may send (their outcomes are kept in memory).
const MAX_REQUESTS: u64 = 10_000_000;

/// Runs the load and prints the report.
pub fn run(args: &LoadgenArgs) -> anyhow::Result<Status> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of requests per second");
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be a positive number of seconds");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    // Every request's outcome is kept for the percentiles: bound what one run may ask.
    if args.rate > MAX_RATE {
        bail!(
            "--rate {}: at most {MAX_RATE} requests per second",
            args.rate
        );
    }
    if args.rate * args.duration > MAX_REQUESTS as f64 {
        bail!(
            "--rate {} × --duration {} is more than {MAX_REQUESTS} requests",
            args.rate,
            args.duration
        );
    }
    let (host, port, path) = target(&args.url)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = rt.block_on(generate(args, host, port, path));
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(at: f64, ms: u64, line: &str) -> Outcome {
        Outcome {
            scheduled_s: at,
            result: Ok((Duration::from_millis(ms), line.to_string())),
        }
    }

    fn err(at: f64, kind: ErrorKind) -> Outcome {
        Outcome {
            scheduled_s: at,
            result: Err(kind),
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 500.0);
        assert_eq!(quantile(&v, 0.99), 990.0);
        assert_eq!(quantile(&v, 0.999), 999.0);
        assert_eq!(quantile(&[7.0], 0.999), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn the_longest_failure_run_is_found_in_schedule_order() {
        let outcomes = vec![
            err(0.4, ErrorKind::Connect),
            ok(0.0, 5, "a"),
            err(0.1, ErrorKind::Timeout),
            ok(0.2, 7, "b"),
            err(0.3, ErrorKind::Status),
            err(0.5, ErrorKind::Io),
            ok(0.6, 9, "a"),
        ];
        let r = summarize("u", 10.0, 0.7, outcomes, 0.7, Duration::ZERO);
        assert_eq!((r.requests, r.ok), (7, 3));
        assert_eq!(
            r.errors,
            Errors {
                connect: 1,
                timeout: 1,
                status: 1,
                io: 1
            }
        );
        let w = r.longest_failure_window.unwrap();
        assert_eq!((w.failures, w.first_s, w.last_s), (3, 0.3, 0.5));
        assert!((w.seconds - 0.2).abs() < 1e-9);
        assert_eq!(
            r.bodies,
            [("a".to_string(), 2), ("b".to_string(), 1)].into()
        );
        assert_eq!(r.latency_ms.unwrap().max, 9.0);
        assert!((r.achieved_rate - 10.0).abs() < 1e-9);
    }

    #[test]
    fn distinct_bodies_are_capped() {
        let outcomes = (0..150)
            .map(|i| ok(i as f64, 1, &format!("host-{i:03}")))
            .collect();
        let r = summarize("u", 1.0, 150.0, outcomes, 150.0, Duration::ZERO);
        assert_eq!((r.distinct_bodies, r.other_bodies), (MAX_BODIES, 50));
        assert!(r.longest_failure_window.is_none());
    }

    #[test]
    fn urls() {
        assert_eq!(
            target("http://127.0.0.1:8080/x?y=1").unwrap(),
            ("127.0.0.1".to_string(), 8080, "/x?y=1".to_string())
        );
        assert_eq!(target("http://web").unwrap().1, 80);
        assert!(target("https://web").is_err());
        assert!(target("not a url").is_err());
    }
}
