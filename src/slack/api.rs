//! Outgoing calls to Slack: `response_url` follow-ups (and, later, the Web API).
//!
//! A follow-up is best effort: it is retried a little, logged when it fails, and never fails
//! the click or the cycle that sent it.

use std::time::Duration;

/// A small Slack client. Built lazily, so a cold start that never posts pays nothing for it.
#[derive(Clone)]
pub struct Slack {
    http: reqwest::Client,
}

impl Default for Slack {
    fn default() -> Self {
        Self::new()
    }
}

impl Slack {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client with static settings");
        Self { http }
    }

    /// Posts `body` (a message JSON) to a `response_url`. Up to three attempts; returns
    /// whether it was delivered.
    pub async fn respond(&self, response_url: &str, body: &serde_json::Value) -> bool {
        if !allowed_response_url(response_url) {
            tracing::warn!("refusing to post to a response_url that is not http(s)");
            return false;
        }
        for attempt in 1..=3u32 {
            match self.http.post(response_url).json(body).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    attempt,
                    "response_url post refused"
                ),
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), attempt, "response_url post failed")
                }
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        false
    }
}

fn allowed_response_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}
