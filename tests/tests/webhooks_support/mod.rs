//! Sending webhook deliveries as forges do, for the webhook suite and `esteira-bench
//! webhooks`: the corpus payloads rewritten to a test repository's commits, signed, and
//! posted over a plain HTTP/1.1 connection. Also a stand-in for a forge's status API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// A fixture of `tests/fixtures/webhooks/` as parsed JSON.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/webhooks")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("fixture JSON")
}

/// The push payload of fixture `name` moved to `git_ref` (`refs/heads/…`), from
/// `before` (when given) to `after`: the `/ref`, `/before` and `/after` every forge's push
/// event has.
pub fn push_fixture(name: &str, git_ref: &str, before: Option<&str>, after: &str) -> Value {
    let mut push = fixture(name);
    set(&mut push, "/ref", git_ref);
    if let Some(before) = before {
        set(&mut push, "/before", before);
    }
    set(&mut push, "/after", after);
    push
}

/// Sets the JSON pointer `pointer` of `value` (which must exist) to `new`.
pub fn set(value: &mut Value, pointer: &str, new: impl Into<Value>) {
    let slot = value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the payload has no {pointer}"));
    *slot = new.into();
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The headers a forge sends with `body`: event, delivery id and signature.
pub fn forge_headers(
    forge: &str,
    event: &str,
    delivery: &str,
    secret: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = match forge {
        "gitlab" => vec![
            ("X-Gitlab-Event", event.to_string()),
            ("X-Gitlab-Token", secret.to_string()),
            ("Idempotency-Key", delivery.to_string()),
            ("X-Gitlab-Event-UUID", delivery.to_string()),
        ],
        "github" => vec![
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
            (
                "X-Hub-Signature-256",
                format!("sha256={}", hmac_hex(secret, body)),
            ),
        ],
        "gitea" | "forgejo" => {
            let signature = hmac_hex(secret, body);
            let mut pairs = vec![
                ("X-Gitea-Event", event.to_string()),
                ("X-Gitea-Delivery", delivery.to_string()),
                ("X-Gitea-Signature", signature.clone()),
                // The GitHub copies Gitea also sends.
                ("X-GitHub-Event", event.to_string()),
                ("X-GitHub-Delivery", delivery.to_string()),
                ("X-Hub-Signature-256", format!("sha256={signature}")),
            ];
            if forge == "forgejo" {
                pairs.extend([
                    ("X-Forgejo-Event", event.to_string()),
                    ("X-Forgejo-Delivery", delivery.to_string()),
                    ("X-Forgejo-Signature", signature),
                ]);
            }
            pairs
        }
        other => panic!("no forge {other}"),
    };
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// POSTs `body` to `http://{address}{path}` on a new connection. With `expect_continue`,
/// the body is only sent once the server asks for it (so a refusal by headers alone,
/// like 413, is read cleanly).
pub fn post(
    address: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    expect_continue: bool,
) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect to the coordinator");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: esteira-tests\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send headers");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    if expect_continue {
        let (status, _) = read_head(&mut reader);
        if status != 100 {
            return finish(reader, status);
        }
        let mut blank = String::new();
        let _ = reader.read_line(&mut blank);
    }
    stream.write_all(body).expect("send body");
    let (status, _) = read_head(&mut reader);
    finish(reader, status)
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<String>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    if status == 100 {
        return (status, Vec::new());
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        headers.push(line.trim_end().to_string());
    }
    (status, headers)
}

fn finish(mut reader: impl Read, status: u16) -> Answer {
    let mut body = Vec::new();
    let _ = reader.read_to_end(&mut body);
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A delivery ready to send again and again.
#[derive(Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn new(
        forge: &str,
        project: &str,
        event: &str,
        delivery: &str,
        secret: &str,
        payload: &Value,
    ) -> Delivery {
        let body = serde_json::to_vec(payload).expect("payload bytes");
        Delivery {
            path: format!("/hooks/{forge}/{project}"),
            headers: forge_headers(forge, event, delivery, secret, &body),
            body,
        }
    }

    pub fn send(&self, address: &str) -> Answer {
        post(address, &self.path, &self.headers, &self.body, false)
    }
}

/// A request a stand-in forge received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub answered: u16,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The pipeline id the stand-in forge answers statuses with (as GitLab does).
pub const FORGE_PIPELINE_ID: u64 = 4242;

/// A forge's API stood in by a thread: records every request and answers 201, or 500
/// until `failing_until`.
pub struct FakeForge {
    pub address: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub failing_until: Arc<Mutex<Option<Instant>>>,
}

impl FakeForge {
    pub fn start() -> FakeForge {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let received = Arc::new(Mutex::new(Vec::new()));
        let failing_until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let (log, failing) = (received.clone(), failing_until.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, failing) = (log.clone(), failing.clone());
                std::thread::spawn(move || serve(stream, &log, &failing));
            }
        });
        FakeForge {
            address,
            received,
            failing_until,
        }
    }

    pub fn fail_for(&self, duration: Duration) {
        *self.failing_until.lock().expect("lock") = Some(Instant::now() + duration);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>, failing: &Mutex<Option<Instant>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.trim_end().split_once(':') {
                let value = value.trim().to_string();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                }
                headers.push((name.to_string(), value));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let fail = failing
            .lock()
            .expect("lock")
            .is_some_and(|until| Instant::now() < until);
        let answered = if fail { 500 } else { 201 };
        log.lock().expect("lock").push(Received {
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            answered,
            at: Instant::now(),
        });
        // GitLab names the pipeline it filed a status under; the others' extra field
        // is ignored.
        let answer = if fail {
            "{}".to_string()
        } else {
            format!("{{\"pipeline_id\": {FORGE_PIPELINE_ID}}}")
        };
        let reply = format!(
            "HTTP/1.1 {answered} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            if fail {
                "Internal Server Error"
            } else {
                "Created"
            },
            answer.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// GETs `http://{address}{path}` with a bearer token; the answer.
pub fn get(address: &str, path: &str, token: &str) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send");
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let chunked = headers.iter().any(|h| {
        h.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let mut raw = Vec::new();
    let _ = reader.read_to_end(&mut raw);
    let body = if chunked { dechunk(&raw) } else { raw };
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&raw[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || raw.len() < end + 2 + size {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 4 + size).min(raw.len())..];
    }
}
