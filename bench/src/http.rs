//! A minimal HTTP/1.1 client for the few labboard API calls the bench makes: one request per
//! connection (`Connection: close`), JSON in and out. Enough for loopback; no TLS, no redirects.

use std::time::Duration;

use anyhow::{bail, Context};
use labboard_protocol::DocumentId;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on one API call, connect to last byte. A local server answers in milliseconds; this
/// only stops a wedged server from hanging the run before the global timeout does.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// One answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

/// `http://host:port` (a trailing slash allowed) -> `host:port`.
pub fn authority(base_url: &str) -> anyhow::Result<String> {
    let Some(rest) = base_url.strip_prefix("http://") else {
        bail!("`{base_url}` is not an http:// URL");
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        bail!("`{base_url}` must be http://host:port with no path");
    }
    Ok(rest.to_owned())
}

/// Sends one request with a JSON body (none for `GET`) to `authority` and reads the whole
/// answer, within [`HTTP_TIMEOUT`].
pub async fn request(
    authority: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Response> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let body = (method != "GET").then_some(("application/json", body.as_bytes()));
    request_bytes(authority, method, path, bearer, body).await
}

/// Sends one request with `body` (its content type and bytes) and reads the whole answer,
/// within [`HTTP_TIMEOUT`].
pub async fn request_bytes(
    authority: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> anyhow::Result<Response> {
    tokio::time::timeout(
        HTTP_TIMEOUT,
        exchange(authority, method, path, bearer, body),
    )
    .await
    .with_context(|| format!("{method} {path}: no answer within {HTTP_TIMEOUT:?}"))?
    .with_context(|| format!("{method} http://{authority}{path}"))
}

async fn exchange(
    authority: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> anyhow::Result<Response> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some((content_type, bytes)) = body {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
        head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(authority).await.context("connecting")?;
    stream.write_all(head.as_bytes()).await?;
    if let Some((_, bytes)) = body {
        stream.write_all(bytes).await?;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.context("reading")?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> anyhow::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the answer")?;
    let head = std::str::from_utf8(&raw[..split]).context("headers are not UTF-8")?;
    let mut payload = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    let mut chunked = false;
    for (name, value) in lines.filter_map(|line| line.split_once(':')) {
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name == "content-length" {
            let length: usize = value.parse().context("bad Content-Length")?;
            payload = payload
                .get(..length)
                .context("answer shorter than Content-Length")?;
        }
    }
    let body = if chunked {
        dechunk(payload)?
    } else {
        payload.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8(body).context("body is not UTF-8")?,
    })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(data.get(..size).context("truncated chunk")?);
        data = data.get(size + 2..).context("truncated chunk end")?;
    }
}

/// A lab as the create call returns it.
#[derive(Debug, Clone)]
pub struct CreatedLab {
    pub lab_id: String,
    pub doc_id: DocumentId,
    pub join_code: String,
}

/// `POST /api/labs` with the organizer token.
pub async fn create_lab(
    authority: &str,
    organizer_token: &str,
    title: &str,
) -> anyhow::Result<CreatedLab> {
    let body = json!({ "title": title, "school": "Bench school", "grade": "2" });
    let response = request(
        authority,
        "POST",
        "/api/labs",
        Some(organizer_token),
        Some(&body),
    )
    .await?;
    if response.status != 201 {
        bail!(
            "creating a lab: HTTP {}: {}",
            response.status,
            response.body
        );
    }
    let json = response.json()?;
    let text = |key: &str| {
        json[key]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no `{key}` in {json}"))
    };
    Ok(CreatedLab {
        lab_id: text("labId")?,
        doc_id: DocumentId::from_url(&text("docUrl")?).context("docUrl")?,
        join_code: text("joinCode")?,
    })
}

/// `POST /api/join`; returns the observer token.
/// A token of a lab and the author id it grants.
pub struct Joined {
    pub token: String,
    pub author_id: String,
}

/// Joins a lab by code as `name`.
pub async fn join(authority: &str, code: &str, name: &str) -> anyhow::Result<Joined> {
    let body = json!({ "code": code, "name": name });
    let response = request(authority, "POST", "/api/join", None, Some(&body)).await?;
    if response.status != 200 {
        bail!(
            "joining as {name}: HTTP {}: {}",
            response.status,
            response.body
        );
    }
    let json = response.json()?;
    let field = |key: &str| {
        json[key]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no `{key}` in the join answer"))
    };
    Ok(Joined {
        token: field("token")?,
        author_id: field("authorId")?,
    })
}

/// The `connections` count of `GET /healthz`.
pub async fn server_connections(authority: &str) -> anyhow::Result<u64> {
    health_count(authority, "connections").await
}

/// The `documentsLoaded` count of `GET /healthz`: boards the server holds in memory.
pub async fn documents_loaded(authority: &str) -> anyhow::Result<u64> {
    health_count(authority, "documentsLoaded").await
}

async fn health_count(authority: &str, key: &str) -> anyhow::Result<u64> {
    let response = request(authority, "GET", "/healthz", None, None).await?;
    response.json()?[key]
        .as_u64()
        .with_context(|| format!("no `{key}` in /healthz"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}";
        let response = parse(plain).unwrap();
        assert_eq!((response.status, response.body.as_str()), (201, "{}"));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse(chunked).unwrap().body, "{\"a\":1}");
    }

    #[test]
    fn authority_takes_host_and_port() {
        assert_eq!(authority("http://127.0.0.1:80/").unwrap(), "127.0.0.1:80");
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://x:1/api").is_err());
    }
}
