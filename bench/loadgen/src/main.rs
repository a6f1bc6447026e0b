//! `loadgen`: a closed-loop HTTP/1.1 load generator for Strato's benchmark harness.
//!
//! A fixed number of workers (`--concurrency`) each send one request at a time over a kept-alive
//! connection until a fixed request count or a duration is reached, whichever comes first. Every
//! run stops by itself (a hard cap on duration always applies) and only loopback targets are
//! accepted. Latencies go into HDR histograms (one per worker, merged at the end, so the hot path
//! takes no lock). The result is one JSON object on stdout.
//!
//! `loadgen --serve 127.0.0.1:PORT --body TEXT --duration SECS` runs a null HTTP server instead: the
//! upper bound of what this client can drive, which is how the harness reports its headroom.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// No run may last longer than this, whatever it was asked.
const HARD_CAP: Duration = Duration::from_secs(900);

struct SigV4 {
    identity: aws_smithy_runtime_api::client::identity::Identity,
    region: String,
    service: String,
}

struct Config {
    url: String,
    method: Method,
    body: Bytes,
    /// The body holds `{n}` or `{i}` and is rewritten per request.
    body_vars: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
    sigv4: Option<SigV4>,
    concurrency: usize,
    requests: u64,
    duration: Duration,
    warmup: u64,
    threads: usize,
    timeout: Duration,
    n_range: u64,
    close: bool,
}

#[derive(Default)]
struct Tally {
    ok2xx: u64,
    s4xx: u64,
    s429: u64,
    s5xx: u64,
    other: u64,
    transport_errors: u64,
    timeouts: u64,
    function_errors: u64,
    bytes: u64,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok2xx += o.ok2xx;
        self.s4xx += o.s4xx;
        self.s429 += o.s429;
        self.s5xx += o.s5xx;
        self.other += o.other;
        self.transport_errors += o.transport_errors;
        self.timeouts += o.timeouts;
        self.function_errors += o.function_errors;
        self.bytes += o.bytes;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

fn usage() -> &'static str {
    "usage: loadgen --url URL [--method M] [--body TEXT] [--header K:V]... [--sigv4 AK:SK:REGION:SERVICE]\n\
     \x20              [--concurrency C] [--requests N] [--duration SECS] [--warmup N] [--threads T]\n\
     \x20              [--timeout SECS] [--n-range K] [--close]\n\
     \x20      loadgen --serve 127.0.0.1:PORT [--body TEXT] [--duration SECS] [--threads T]\n\
     In URL and body, `{n}` is replaced per request by a number in 0..K (--n-range), spread over\n\
     \x20the range, and `{i}` by the request's index."
}

fn loopback_only(host: &str) -> Result<(), String> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h == "localhost" {
        return Ok(());
    }
    match h.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Ok(()),
        _ => Err(format!("refusing non-loopback target {host:?}")),
    }
}

fn parse_args() -> Result<(Config, Option<SocketAddr>), String> {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut method = None;
    let mut body = String::new();
    let mut headers = Vec::new();
    let mut sigv4 = None;
    let mut concurrency = 1usize;
    let mut requests = u64::MAX;
    let mut duration = None;
    let mut warmup = 0u64;
    let mut threads = 1usize;
    let mut timeout = Duration::from_secs(60);
    let mut n_range = 1u64;
    let mut close = false;
    let mut serve = None;
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => url = Some(val()?),
            "--method" => method = Some(val()?.parse::<Method>().map_err(|e| e.to_string())?),
            "--body" => body = val()?,
            "--body-file" => {
                let p = val()?;
                body = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?
            }
            "--header" => {
                let v = val()?;
                let (k, v) = v.split_once(':').ok_or("--header wants K:V")?;
                headers.push((
                    HeaderName::try_from(k.trim()).map_err(|e| e.to_string())?,
                    HeaderValue::try_from(v.trim()).map_err(|e| e.to_string())?,
                ));
            }
            "--sigv4" => {
                let v = val()?;
                let parts: Vec<&str> = v.splitn(4, ':').collect();
                if parts.len() != 4 {
                    return Err("--sigv4 wants AK:SK:REGION:SERVICE".into());
                }
                let creds = aws_credential_types::Credentials::new(
                    parts[0], parts[1], None, None, "loadgen",
                );
                sigv4 = Some(SigV4 {
                    identity: creds.into(),
                    region: parts[2].to_string(),
                    service: parts[3].to_string(),
                });
            }
            "--concurrency" => concurrency = val()?.parse().map_err(|_| "bad --concurrency")?,
            "--requests" => requests = val()?.parse().map_err(|_| "bad --requests")?,
            "--duration" => {
                duration = Some(Duration::from_secs_f64(
                    val()?.parse().map_err(|_| "bad --duration")?,
                ))
            }
            "--warmup" => warmup = val()?.parse().map_err(|_| "bad --warmup")?,
            "--threads" => threads = val()?.parse().map_err(|_| "bad --threads")?,
            "--timeout" => {
                timeout = Duration::from_secs_f64(val()?.parse().map_err(|_| "bad --timeout")?)
            }
            "--n-range" => n_range = val()?.parse().map_err(|_| "bad --n-range")?,
            "--close" => close = true,
            "--serve" => serve = Some(val()?.parse::<SocketAddr>().map_err(|e| e.to_string())?),
            "-h" | "--help" => return Err(usage().into()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if let Some(addr) = serve {
        loopback_only(&addr.ip().to_string())?;
    }
    let url = match (url, serve) {
        (Some(u), _) => u,
        (None, Some(_)) => String::new(),
        (None, None) => return Err(usage().into()),
    };
    if serve.is_none() {
        let probe: Uri = url
            .replace("{n}", "0")
            .replace("{i}", "0")
            .parse()
            .map_err(|e| format!("bad --url: {e}"))?;
        loopback_only(probe.host().ok_or("--url needs a host")?)?;
        if requests == u64::MAX && duration.is_none() {
            return Err("give --requests or --duration (or both)".into());
        }
    }
    let method = method.unwrap_or(if body.is_empty() {
        Method::GET
    } else {
        Method::POST
    });
    let duration = duration.unwrap_or(HARD_CAP).min(HARD_CAP);
    Ok((
        Config {
            url,
            method,
            body_vars: body.contains("{n}") || body.contains("{i}"),
            body: Bytes::from(body),
            headers,
            sigv4,
            concurrency: concurrency.max(1),
            requests,
            duration,
            warmup,
            threads: threads.max(1),
            timeout,
            n_range: n_range.max(1),
            close,
        },
        serve,
    ))
}

fn new_hist() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant figures.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn build_request(cfg: &Config, i: u64) -> Result<Request<Full<Bytes>>, String> {
    // `{n}`: spread consecutive requests over 0..n_range (a stride coprime with most ranges);
    // `{i}`: the request's index. Both in the URL and the body.
    let n = (i.wrapping_mul(7_919)) % cfg.n_range;
    let subst = |s: &str| {
        s.replace("{n}", &n.to_string())
            .replace("{i}", &i.to_string())
    };
    let url = if cfg.url.contains('{') {
        subst(&cfg.url)
    } else {
        cfg.url.clone()
    };
    let body = if cfg.body_vars {
        Bytes::from(subst(std::str::from_utf8(&cfg.body).unwrap_or("")))
    } else {
        cfg.body.clone()
    };
    let uri: Uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let mut req = Request::builder()
        .method(cfg.method.clone())
        .uri(uri)
        .body(Full::new(body.clone()))
        .map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        http::header::HOST,
        HeaderValue::try_from(host).map_err(|e| e.to_string())?,
    );
    if !body.is_empty() && !h.contains_key(http::header::CONTENT_TYPE) {
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (k, v) in &cfg.headers {
        h.insert(k.clone(), v.clone());
    }
    if cfg.close {
        h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(s) = &cfg.sigv4 {
        sign(s, &mut req, &body)?;
    }
    Ok(req)
}

fn sign(s: &SigV4, req: &mut Request<Full<Bytes>>, body: &Bytes) -> Result<(), String> {
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
        SigningSettings,
    };
    use aws_sigv4::sign::v4;
    let mut settings = SigningSettings::default();
    if s.service == "s3" {
        // S3 signs the path as sent (no second encoding) and wants the body's hash in
        // `x-amz-content-sha256`.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&s.identity)
        .region(&s.region)
        .name(&s.service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

struct WorkerResult {
    total: Histogram<u64>,
    ttfb: Histogram<u64>,
    tally: Tally,
    first_done: Option<Instant>,
    last_done: Option<Instant>,
}

async fn worker(
    cfg: Arc<Config>,
    client: HttpClient,
    counter: Arc<AtomicU64>,
    limit: u64,
    deadline: Instant,
) -> WorkerResult {
    let mut r = WorkerResult {
        total: new_hist(),
        ttfb: new_hist(),
        tally: Tally::default(),
        first_done: None,
        last_done: None,
    };
    loop {
        let i = counter.fetch_add(1, Ordering::Relaxed);
        if i >= limit || Instant::now() >= deadline {
            break;
        }
        let req = match build_request(&cfg, i) {
            Ok(req) => req,
            Err(e) => {
                r.tally.transport_errors += 1;
                r.tally.first_error.get_or_insert(e);
                break;
            }
        };
        // The deadline only stops new requests: one in flight finishes (or hits --timeout).
        let t0 = Instant::now();
        let outcome = tokio::time::timeout(cfg.timeout, async {
            let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
            let ttfb = t0.elapsed();
            let status = resp.status().as_u16();
            let fn_err = resp.headers().contains_key("x-amz-function-error");
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((ttfb, status, fn_err, body.len()))
        })
        .await;
        let done = Instant::now();
        match outcome {
            Ok(Ok((ttfb, status, fn_err, len))) => {
                let total = done - t0;
                r.total.saturating_record(total.as_micros().max(1) as u64);
                r.ttfb.saturating_record(ttfb.as_micros().max(1) as u64);
                r.tally.bytes += len as u64;
                if fn_err {
                    r.tally.function_errors += 1;
                }
                match status {
                    200..=299 => r.tally.ok2xx += 1,
                    429 => {
                        r.tally.s429 += 1;
                        r.tally.s4xx += 1
                    }
                    400..=499 => r.tally.s4xx += 1,
                    500..=599 => r.tally.s5xx += 1,
                    _ => r.tally.other += 1,
                }
                if !(200..=299).contains(&status) && r.tally.first_error.is_none() {
                    r.tally.first_error = Some(format!("HTTP {status}"));
                }
                r.first_done.get_or_insert(done);
                r.last_done = Some(done);
            }
            Ok(Err(e)) => {
                r.tally.transport_errors += 1;
                r.tally.first_error.get_or_insert(e);
            }
            Err(_) => {
                r.tally.timeouts += 1;
                r.tally.first_error.get_or_insert_with(|| "timeout".into());
            }
        }
    }
    r
}

fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn hist_json(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |v: u64| v as f64 / 1000.0;
    if h.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::json!({
        "min_ms": ms(h.min()),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": h.mean() / 1000.0,
    })
}

async fn run_load(cfg: Arc<Config>) -> serde_json::Value {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(90))
        .build_http();
    let hard_deadline = Instant::now() + HARD_CAP;

    if cfg.warmup > 0 {
        let counter = Arc::new(AtomicU64::new(0));
        let deadline = (Instant::now() + cfg.duration).min(hard_deadline);
        let mut set = Vec::new();
        for _ in 0..cfg.concurrency {
            set.push(tokio::spawn(worker(
                cfg.clone(),
                client.clone(),
                counter.clone(),
                cfg.warmup,
                deadline,
            )));
        }
        for t in set {
            let _ = t.await;
        }
    }

    let counter = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let deadline = (start + cfg.duration).min(hard_deadline);
    let mut set = Vec::new();
    for _ in 0..cfg.concurrency {
        set.push(tokio::spawn(worker(
            cfg.clone(),
            client.clone(),
            counter.clone(),
            cfg.requests,
            deadline,
        )));
    }
    let mut total = new_hist();
    let mut ttfb = new_hist();
    let mut tally = Tally::default();
    let mut first_done: Option<Instant> = None;
    let mut last_done: Option<Instant> = None;
    for t in set {
        if let Ok(r) = t.await {
            let _ = total.add(&r.total);
            let _ = ttfb.add(&r.ttfb);
            tally.merge(r.tally);
            if let Some(f) = r.first_done {
                first_done = Some(first_done.map_or(f, |x| x.min(f)));
            }
            if let Some(l) = r.last_done {
                last_done = Some(last_done.map_or(l, |x| x.max(l)));
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let completed = total.len();
    serde_json::json!({
        "url": cfg.url,
        "concurrency": cfg.concurrency,
        "completed": completed,
        "wall_s": wall,
        "throughput_rps": if wall > 0.0 { completed as f64 / wall } else { 0.0 },
        "first_response_s": first_done.map(|f| (f - start).as_secs_f64()),
        "last_response_s": last_done.map(|l| (l - start).as_secs_f64()),
        "latency": hist_json(&total),
        "ttfb": hist_json(&ttfb),
        "status": {
            "2xx": tally.ok2xx, "4xx": tally.s4xx, "429": tally.s429, "5xx": tally.s5xx,
            "other": tally.other,
        },
        "transport_errors": tally.transport_errors,
        "timeouts": tally.timeouts,
        "function_errors": tally.function_errors,
        "response_bytes": tally.bytes,
        "first_error": tally.first_error,
        "loadgen_cpu_s": cpu,
        "loadgen_cpu_util": if wall > 0.0 { cpu / wall } else { 0.0 },
        "threads": cfg.threads,
    })
}

async fn serve(addr: SocketAddr, body: Bytes, duration: Duration) -> Result<(), String> {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let accept = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    };
    // The server, too, stops by itself.
    let _ = tokio::time::timeout(duration, accept).await;
    Ok(())
}

fn main() -> ExitCode {
    let (cfg, serve_addr) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Some(addr) = serve_addr {
        return match rt.block_on(serve(addr, cfg.body.clone(), cfg.duration)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let out = rt.block_on(run_load(Arc::new(cfg)));
    println!("{out}");
    ExitCode::SUCCESS
}
