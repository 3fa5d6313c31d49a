//! The web client, embedded in the binary so that one file deploys the whole product.
//!
//! `web-client/dist` is built by Vite; its post-build step writes `.br` and `.gz` siblings of
//! the larger files, which are sent to browsers that accept them. App routes all answer
//! `index.html` (the client routes on the path); hashed assets are cached for good; the
//! service worker and the page itself are revalidated on every load.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "../web-client/dist"]
struct Dist;

/// The page's Content Security Policy: only our own scripts, styles, sockets and workers;
/// WebAssembly compilation for Automerge; no frames, no inline code.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = "index.html";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(app_page))
        .route("/new", get(app_page))
        .route("/labs", get(app_page))
        .route("/j/{code}", get(app_page))
        .route("/lab/{lab_id}", get(app_page))
        .route("/lab/{lab_id}/board", get(app_page))
        .route("/lab/{lab_id}/record", get(app_page))
        .route("/assets/{*path}", get(asset))
        .fallback(root_file)
}

async fn app_page(headers: HeaderMap) -> Response {
    if Dist::get(INDEX).is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The web client is not built into this server. Build it with scripts/run \
             (or `npm ci && npm run build` in web-client/, then rebuild the server).\n",
        )
            .into_response();
    }
    serve(INDEX, &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("assets/{path}"), &headers)
}

/// Files at the top of the build (service worker, icons, manifest); anything else is 404.
async fn root_file(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.is_empty() || path.contains('/') || path == INDEX {
        return not_found();
    }
    serve(path, &headers)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not found\n",
    )
        .into_response()
}

/// Serves one embedded file, precompressed when the browser accepts it.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    // Precompressed siblings are served in place of their originals, never by their own name.
    if path.ends_with(".br") || path.ends_with(".gz") {
        return not_found();
    }
    let Some(file) = Dist::get(path) else {
        return not_found();
    };
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let accepts = |coding: &str| {
        accepted
            .split(',')
            .any(|part| part.split(';').next().is_some_and(|c| c.trim() == coding))
    };
    let compressed = [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .filter(|(coding, _)| accepts(coding))
        .find_map(|(coding, ext)| Dist::get(&format!("{path}.{ext}")).map(|f| (f.data, coding)));
    let (body, encoding) = match compressed {
        Some((data, coding)) => (data, Some(coding)),
        None => (file.data, None),
    };
    let mut response = body.into_owned().into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    response_headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(encoding) = encoding {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    let cache = if path.starts_with("assets/") {
        // Vite puts a content hash in every asset name.
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if path == INDEX {
        response_headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    if path == "sw.js" {
        response_headers.insert("service-worker-allowed", HeaderValue::from_static("/"));
    }
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        // Browsers compile WebAssembly while it downloads only with this type.
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_fit_what_browsers_need() {
        assert_eq!(
            content_type("assets/automerge-1a2b.wasm"),
            "application/wasm"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("sw.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
