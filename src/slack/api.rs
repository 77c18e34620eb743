//! Outgoing calls to Slack: the Web API (`users.info`, `users.lookupByEmail`,
//! `chat.postMessage`, `chat.update`, `views.open`, `views.publish`) and `response_url`
//! follow-ups.
//!
//! A follow-up is best effort: it is retried a little, logged when it fails, and never fails
//! the click or the cycle that sent it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::approval::Posted;

/// The Slack Web API with the app's bot token. The base URL is configurable so that tests
/// point it at a local fake.
#[derive(Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

/// What `users.info` tells us about a user.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SlackUser {
    pub id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub is_restricted: bool,
    #[serde(default)]
    pub is_ultra_restricted: bool,
    #[serde(default)]
    pub is_stranger: bool,
    #[serde(default)]
    pub profile: Profile,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Profile {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("Slack API {method}: {error}")]
    Api { method: &'static str, error: String },
    #[error("Slack API {method}: {reason}")]
    Transport {
        method: &'static str,
        reason: String,
    },
    #[error("no Slack bot token configured")]
    NoToken,
}

const ATTEMPTS: u32 = 3;

impl SlackApi {
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client with static settings");
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Calls a Web API method with a JSON body; retries transport failures, 5xx and
    /// `ratelimited` with a short backoff. Returns the response when `ok` is true.
    pub async fn call(&self, method: &'static str, body: &Value) -> Result<Value, SlackError> {
        self.send(method, |http, url| http.post(url).json(body))
            .await
    }

    /// Read methods such as `users.info` take form arguments, not JSON.
    async fn call_form(
        &self,
        method: &'static str,
        args: &[(&str, &str)],
    ) -> Result<Value, SlackError> {
        self.send(method, |http, url| http.post(url).form(args))
            .await
    }

    async fn send(
        &self,
        method: &'static str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Value, SlackError> {
        let token = self.token.as_deref().ok_or(SlackError::NoToken)?;
        let url = format!("{}/{method}", self.base_url);
        let mut last = SlackError::Transport {
            method,
            reason: "not attempted".into(),
        };
        for attempt in 1..=ATTEMPTS {
            let sent = build(&self.http, &url).bearer_auth(token).send().await;
            match sent {
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                    last = SlackError::Transport {
                        method,
                        reason: format!("HTTP {}", r.status().as_u16()),
                    };
                }
                Ok(r) => {
                    let v: Value = r.json().await.map_err(|e| SlackError::Transport {
                        method,
                        reason: format!("unreadable response: {}", e.without_url()),
                    })?;
                    if v["ok"] == true {
                        return Ok(v);
                    }
                    let error = v["error"].as_str().unwrap_or("unknown_error").to_owned();
                    if error != "ratelimited" && error != "internal_error" {
                        return Err(SlackError::Api { method, error });
                    }
                    last = SlackError::Api { method, error };
                }
                Err(e) => {
                    last = SlackError::Transport {
                        method,
                        reason: e.without_url().to_string(),
                    }
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
        }
        Err(last)
    }

    pub async fn user_info(&self, user: &str) -> Result<SlackUser, SlackError> {
        let v = self.call_form("users.info", &[("user", user)]).await?;
        serde_json::from_value(v["user"].clone()).map_err(|e| SlackError::Transport {
            method: "users.info",
            reason: format!("unexpected user object: {e}"),
        })
    }

    /// The Slack user with this e-mail address (`users.lookupByEmail`), if there is one.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<SlackUser>, SlackError> {
        match self
            .call_form("users.lookupByEmail", &[("email", email)])
            .await
        {
            Ok(v) => serde_json::from_value(v["user"].clone())
                .map(Some)
                .map_err(|e| SlackError::Transport {
                    method: "users.lookupByEmail",
                    reason: format!("unexpected user object: {e}"),
                }),
            Err(SlackError::Api { error, .. }) if error == "users_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Posts a message (in a thread when `thread_ts` is given); returns its `ts`.
    pub async fn post_message(
        &self,
        channel: &str,
        message: &Value,
        thread_ts: Option<&str>,
    ) -> Result<String, SlackError> {
        Ok(self.post(channel, message, thread_ts).await?.ts)
    }

    /// Posts a message and says where it went: the channel Slack answers with (a direct
    /// message to a user id lands in a conversation of its own, and only that id can be
    /// `chat.update`d) and its `ts`.
    pub async fn post(
        &self,
        channel: &str,
        message: &Value,
        thread_ts: Option<&str>,
    ) -> Result<Posted, SlackError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        let v = self.call("chat.postMessage", &body).await?;
        Ok(Posted {
            channel: v["channel"].as_str().unwrap_or(channel).to_owned(),
            ts: v["ts"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Replaces a message in place (`chat.update`).
    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        message: &Value,
    ) -> Result<(), SlackError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        self.call("chat.update", &body).await.map(drop)
    }

    /// Publishes `user`'s App Home view (`views.publish`).
    pub async fn publish_view(&self, user: &str, view: &Value) -> Result<(), SlackError> {
        self.call("views.publish", &json!({ "user_id": user, "view": view }))
            .await
            .map(drop)
    }

    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), SlackError> {
        self.call(
            "views.open",
            &json!({ "trigger_id": trigger_id, "view": view }),
        )
        .await
        .map(drop)
    }

    /// Posts `body` to a `response_url`. Up to three attempts; returns whether it was
    /// delivered. Never fails the caller.
    pub async fn respond(&self, response_url: &str, body: &Value) -> bool {
        if !(response_url.starts_with("https://") || response_url.starts_with("http://")) {
            tracing::warn!("refusing to post to a response_url that is not http(s)");
            return false;
        }
        for attempt in 1..=ATTEMPTS {
            match self.http.post(response_url).json(body).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) if r.status().is_client_error() => {
                    // Expired (30 min / 5 uses) or invalid: retrying cannot help.
                    tracing::warn!(
                        status = r.status().as_u16(),
                        "response_url refused the follow-up"
                    );
                    return false;
                }
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    attempt,
                    "response_url post failed"
                ),
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), attempt, "response_url post failed")
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
        }
        false
    }
}
