//! The web console at `/console`: a single page for admins and tenants, built from `console/`
//! and embedded in the binary, so that `telehook serve` alone serves it, with no files to
//! install beside it and nothing fetched from elsewhere.
//!
//! The page signs in with a token it keeps in the browser's session storage and calls the
//! admin API and the live stream as any client does: it can see and do nothing its token
//! could not with `curl`.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::AppState;

/// One embedded file.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("console/assets/index.html"),
};

const ASSETS: &[(&str, Asset)] = &[
    (
        "console.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            bytes: include_bytes!("console/assets/console.js"),
        },
    ),
    (
        "console.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            bytes: include_bytes!("console/assets/console.css"),
        },
    ),
];

/// Scripts and styles from this origin only (uPlot sizes its charts with inline styles), no
/// framing: the page holds a token that manages parsers.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// The console's files' validator: one digest of them all, since they change together.
static ETAG: LazyLock<String> = LazyLock::new(|| {
    let mut digest = Sha256::new();
    for asset in std::iter::once(&INDEX).chain(ASSETS.iter().map(|(_, asset)| asset)) {
        digest.update(asset.bytes);
    }
    format!("\"{}\"", hex::encode(&digest.finalize()[..12]))
});

/// The console's routes: the page at `/console` (and `/console/`), its files beneath it.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/{file}", get(file))
}

async fn page(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|(asset_name, _)| *asset_name == name) {
        Some((_, asset)) => serve(asset, &headers),
        None => (StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
}

/// The file, or `304` when the browser holds this build's copy: every load asks (`no-cache`),
/// so that a new binary's console is never mixed with an old one's cached script.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&ETAG).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
