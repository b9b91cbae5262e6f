//! The native baseline of the end-to-end benchmark (`cargo xtask bench`): the `generic-json`
//! parse compiled into a server on the same HTTP stack as `telehook serve` (axum on hyper, on
//! tokio), with no sandbox, no admission and no event log. What it serves is the ceiling the
//! sandboxed host is measured against.
//!
//! `cargo run --release -p telehook --example native_server [ADDRESS]` prints
//! `native baseline listening on http://ADDRESS` and serves `/hooks/{integration}/{token}`.

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

#[path = "../benches/native/mod.rs"]
mod native;

#[tokio::main]
async fn main() -> Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!(
        "native baseline listening on http://{}",
        listener.local_addr()?
    );
    let app = Router::new().route("/hooks/{integration}/{token}", post(webhook));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn webhook(body: Bytes) -> (StatusCode, String) {
    match native::parse(&body) {
        Ok(_) => (StatusCode::OK, String::new()),
        Err(err) => (StatusCode::BAD_REQUEST, err),
    }
}
