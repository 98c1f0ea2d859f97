//! Optional upload of each archive, as the Insights Operator does it: an HTTP POST with a
//! multipart `file` part, a bearer token and a User-Agent naming the version and cluster.
//! Retries use jittered exponential backoff; 401/403 end the attempts until the next period.
//! The archive stays on disk whatever happens.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where and how to upload.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// The endpoint.
    pub url: reqwest::Url,
    /// A file holding the bearer token (re-read for every upload, so it can rotate).
    pub token_file: Option<PathBuf>,
    /// Attempts per archive.
    pub attempts: u32,
    /// First retry delay (doubles each time, with jitter).
    pub backoff: Duration,
    /// Timeout per attempt.
    pub timeout: Duration,
}

impl UploadConfig {
    /// Defaults for `url`.
    pub fn new(url: reqwest::Url) -> Self {
        UploadConfig { url, token_file: None, attempts: 4, backoff: Duration::from_secs(2), timeout: Duration::from_secs(60) }
    }
}

/// Why an upload gave up.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The endpoint refused our credentials; retrying will not help until they change.
    #[error("upload refused with HTTP {0}; not retrying until the next period")]
    Unauthorized(u16),
    /// Every attempt failed.
    #[error("upload failed after {attempts} attempts: {last}")]
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The archive could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The User-Agent, in the Insights Operator's shape.
pub fn user_agent(cluster_id: Option<&str>) -> String {
    format!("gather-agent/{} cluster/{}", env!("CARGO_PKG_VERSION"), cluster_id.unwrap_or("unknown"))
}

/// Uploads `archive`, retrying as configured. Returns the number of attempts on success.
pub async fn upload(client: &reqwest::Client, cfg: &UploadConfig, archive: &Path, cluster_id: Option<&str>) -> Result<u32, UploadError> {
    let bytes = tokio::fs::read(archive).await.map_err(|source| UploadError::Read { path: archive.to_owned(), source })?;
    let name = archive.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "archive.tar.gz".into());
    let mut last = String::new();
    for attempt in 1..=cfg.attempts.max(1) {
        let token = match &cfg.token_file {
            Some(p) => match tokio::fs::read_to_string(p).await {
                Ok(t) => Some(t.trim().to_owned()),
                // A missing token is configuration, not a transient fault: say so at once.
                Err(e) => return Err(UploadError::Failed { attempts: attempt, last: format!("reading token file {}: {e}", p.display()) }),
            },
            None => None,
        };
        let part = reqwest::multipart::Part::bytes(bytes.clone())
            .file_name(name.clone())
            .mime_str("application/vnd.redhat.openshift.periodic+tar")
            .expect("a valid MIME type");
        let mut req = client
            .post(cfg.url.clone())
            .timeout(cfg.timeout)
            .header(reqwest::header::USER_AGENT, user_agent(cluster_id))
            .multipart(reqwest::multipart::Form::new().part("file", part));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let retry_after = match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!(archive = %archive.display(), attempt, "uploaded");
                return Ok(attempt);
            }
            Ok(resp) if matches!(resp.status().as_u16(), 401 | 403) => return Err(UploadError::Unauthorized(resp.status().as_u16())),
            Ok(resp) => {
                last = format!("HTTP {}", resp.status());
                resp.headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs)
            }
            Err(e) => {
                // reqwest quotes the URL; the upload URL may carry credentials.
                last = crate::redact::scrub(&format!("POST {}: {}", crate::redact::url(&cfg.url), e.without_url()), &cfg.url);
                None
            }
        };
        tracing::warn!(archive = %archive.display(), attempt, "upload failed: {last}");
        if attempt < cfg.attempts {
            let backoff = crate::util::backoff(attempt - 1, cfg.backoff, Duration::from_secs(300));
            tokio::time::sleep(retry_after.unwrap_or(backoff).min(Duration::from_secs(300))).await;
        }
    }
    Err(UploadError::Failed { attempts: cfg.attempts.max(1), last })
}
