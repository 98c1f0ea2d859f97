//! Not a default gatherer: the benchmark's probe for host-call overhead. It makes
//! `config.requests` GETs of `/api/v1/namespaces/default` through the SDK (request, status,
//! size, read, the forwarded headers, close), exactly as a gatherer's `guest::get` does.
//! `cargo xtask gatherers` puts its wasm build in `target/bench/`, away from the default set.

use hostapi::guest::{self, Error, Result};

hostapi::gatherer! {
    name: "bench-requests",
    description: "benchmark probe: N SDK requests (not a gatherer)",
    permissions: ["GET /api/v1/namespaces/default"],
    run: gather,
}

fn gather() -> Result<()> {
    let n = guest::config()["requests"].as_u64().unwrap_or(1000);
    let mut bytes = 0;
    for _ in 0..n {
        let resp = guest::get("/api/v1/namespaces/default")?;
        if !resp.is_success() {
            return Err(Error::Json(format!("HTTP {}", resp.status)));
        }
        bytes += resp.body.len();
    }
    guest::debug(format!("{n} requests, {bytes} bytes"));
    Ok(())
}
