//! Who is on call right now, and whether an incident is open: PagerDuty (REST API v2) and
//! Opsgenie, read-only but for one note on an incident.
//!
//! - PagerDuty: `GET /oncalls?schedule_ids[]=…` (or `escalation_policy_ids[]=…`)
//!   `&include[]=users&earliest=true`, paged by `offset` while `more`; each on-call's
//!   `user.email` and `escalation_level`. Auth `Authorization: Token token=…`.
//!   `GET /incidents/{id}` (open = `triggered` or `acknowledged`),
//!   `POST /incidents/{id}/notes` (with `From:` a PagerDuty user's e-mail).
//! - Opsgenie: `GET /v2/schedules/{id}/on-calls?scheduleIdentifierType=id&flat=true`,
//!   `data.onCallRecipients` (level 1: a schedule has no levels). Auth `GenieKey …`.
//!
//! Tokens come from their own Secrets Manager secret (`ONCALL_SECRET_ARN`), never from the
//! environment or a log line. Answers are cached for a short time (`ONCALL_CACHE_SECONDS`)
//! and every lookup has a deadline (`ONCALL_TIMEOUT_MS`), so a click stays within Slack's
//! three seconds whatever the service does; a lookup that fails says why, and the rule's
//! `oncall_unreachable` decides what that means.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::cache::TtlCache;
use crate::error::Error;
use crate::policy::{Answer, AskFailed, OnCall, OncallSource};

/// `{"pagerduty": {"token": "…", "from": "…"}, "opsgenie": {"token": "…"}}`, each optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OncallSecrets {
    #[serde(default)]
    pub pagerduty: Option<PagerDutySecret>,
    #[serde(default)]
    pub opsgenie: Option<OpsgenieSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySecret {
    pub token: String,
    /// A PagerDuty user's e-mail: notes on incidents are added as this user.
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieSecret {
    pub token: String,
}

impl std::fmt::Debug for OncallSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, even by accident.
        f.debug_struct("OncallSecrets")
            .field("pagerduty", &self.pagerduty.as_ref().map(|_| "redacted"))
            .field("opsgenie", &self.opsgenie.as_ref().map(|_| "redacted"))
            .finish()
    }
}

impl OncallSecrets {
    pub fn parse(json: &str) -> Result<Self, Error> {
        let s: OncallSecrets = serde_json::from_str(json).map_err(|e| {
            Error::Config(format!(
                "on-call secret is not {{\"pagerduty\": {{\"token\": ..., \"from\": ...}}, \"opsgenie\": {{\"token\": ...}}}} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let blank = |t: &str| t.trim().is_empty() || t.chars().any(char::is_control);
        if s.pagerduty.as_ref().is_some_and(|p| blank(&p.token))
            || s.opsgenie.as_ref().is_some_and(|o| blank(&o.token))
        {
            return Err(Error::Config("on-call secret has an empty token".into()));
        }
        Ok(s)
    }

    pub async fn load(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<Self, Error> {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("Secrets Manager GetSecretValue", e))?;
        Self::parse(out.secret_string().unwrap_or_default())
    }
}

/// A PagerDuty incident's id, from an id or an incident URL
/// (`https://acme.pagerduty.com/incidents/Q1ABC2DEF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentId(String);

impl IncidentId {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let id = match s.split_once("://") {
            Some((scheme, rest)) => {
                if scheme != "https" {
                    return Err("an incident URL starts with https://".into());
                }
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                if !host.ends_with(".pagerduty.com") {
                    return Err("not a PagerDuty incident URL".into());
                }
                let path = path.split(['?', '#']).next().unwrap_or_default();
                match path
                    .trim_end_matches('/')
                    .split('/')
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    ["incidents", id] => *id,
                    _ => return Err("not a PagerDuty incident URL (…/incidents/<id>)".into()),
                }
            }
            None => s,
        };
        if (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(id.to_owned()))
        } else {
            Err("not a PagerDuty incident id or URL".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An incident as PagerDuty describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub status: String,
    /// Its page in PagerDuty, when the answer gave an https one.
    pub url: Option<String>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "triggered" | "acknowledged")
    }
}

/// Why an incident could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IncidentError {
    #[error("PagerDuty has no incident {0}")]
    NotFound(String),
    #[error("could not ask PagerDuty about the incident: {0}")]
    Unavailable(String),
}

struct Service {
    url: String,
    auth: String,
}

/// The on-call services the policy uses, with their tokens.
pub struct Oncall {
    /// Built on first use: a click that asks no on-call service pays nothing for it.
    http: std::sync::OnceLock<reqwest::Client>,
    pagerduty: Option<Service>,
    pagerduty_from: Option<String>,
    opsgenie: Option<Service>,
    cache: TtlCache<OncallSource, Vec<OnCall>>,
    timeout: Duration,
}

/// Pages of on-calls read at most (100 each).
const MAX_PAGES: usize = 10;

impl Oncall {
    pub fn new(
        secrets: &OncallSecrets,
        pagerduty_url: &str,
        opsgenie_url: &str,
        cache_for: Duration,
        timeout: Duration,
    ) -> Self {
        let trim = |u: &str| u.trim_end_matches('/').to_owned();
        Self {
            http: std::sync::OnceLock::new(),
            pagerduty: secrets.pagerduty.as_ref().map(|p| Service {
                url: trim(pagerduty_url),
                auth: format!("Token token={}", p.token),
            }),
            pagerduty_from: secrets.pagerduty.as_ref().and_then(|p| p.from.clone()),
            opsgenie: secrets.opsgenie.as_ref().map(|o| Service {
                url: trim(opsgenie_url),
                auth: format!("GenieKey {}", o.token),
            }),
            cache: TtlCache::new(cache_for),
            timeout,
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(self.timeout)
                .connect_timeout(self.timeout)
                .build()
                .expect("reqwest client with static settings")
        })
    }

    /// Whether a token is configured for PagerDuty and for Opsgenie.
    pub fn configured(&self) -> (bool, bool) {
        (self.pagerduty.is_some(), self.opsgenie.is_some())
    }

    /// Asks every source at once, each within the deadline.
    pub async fn ask_all(&self, sources: &[OncallSource]) -> Vec<(OncallSource, Answer)> {
        let answers = futures_util::future::join_all(sources.iter().map(|s| self.who(s))).await;
        sources.iter().cloned().zip(answers).collect()
    }

    /// Who is on call for `source` (cached), or why that could not be found out.
    #[tracing::instrument(skip(self), fields(source = %source))]
    pub async fn who(&self, source: &OncallSource) -> Answer {
        if let Some(people) = self.cache.get(source, Instant::now()) {
            return Ok(people);
        }
        let started = Instant::now();
        let answer = match tokio::time::timeout(self.timeout, self.fetch(source)).await {
            Ok(a) => a,
            Err(_) => Err(AskFailed::Unreachable(format!(
                "timed out after {} ms",
                self.timeout.as_millis()
            ))),
        };
        match &answer {
            Ok(people) => {
                tracing::info!(
                    on_call = people.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "asked who is on call"
                );
                self.cache
                    .insert(source.clone(), people.clone(), Instant::now());
            }
            Err(AskFailed::Unreachable(why)) => {
                tracing::warn!(error = %why, "could not ask who is on call")
            }
            // A refused token or a schedule that does not exist needs someone to fix it.
            Err(AskFailed::Misconfigured(why)) => {
                tracing::error!(error = %why, "on-call lookup misconfigured")
            }
        }
        answer
    }

    async fn fetch(&self, source: &OncallSource) -> Answer {
        match source {
            OncallSource::PagerDutySchedule(id) => {
                self.pagerduty_oncalls("schedule_ids[]", id).await
            }
            OncallSource::PagerDutyEscalationPolicy(id) => {
                self.pagerduty_oncalls("escalation_policy_ids[]", id).await
            }
            OncallSource::OpsgenieSchedule(id) => self.opsgenie_oncalls(id).await,
        }
    }

    /// GETs `path`: the status and the JSON body. A transport failure, a timeout, a 5xx or a
    /// 429 is the service being unreachable; an unreadable body is a misconfiguration (the
    /// URL points somewhere else).
    async fn get(
        &self,
        service: &Service,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(u16, Value), AskFailed> {
        let mut url = format!("{}{path}", service.url);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &serde_urlencoded::to_string(query)
                    .map_err(|e| AskFailed::Misconfigured(e.to_string()))?,
            );
        }
        let r = self
            .http()
            .get(url)
            .header("Authorization", &service.auth)
            .header("Accept", "application/vnd.pagerduty+json;version=2")
            .send()
            .await
            .map_err(|e| AskFailed::Unreachable(e.without_url().to_string()))?;
        let status = r.status().as_u16();
        if status >= 500 || status == 429 {
            return Err(AskFailed::Unreachable(format!("HTTP {status}")));
        }
        let body = r.json::<Value>().await.map_err(|e| {
            AskFailed::Misconfigured(format!(
                "HTTP {status}, unreadable answer: {}",
                e.without_url()
            ))
        })?;
        Ok((status, body))
    }

    /// 200, or a misconfiguration: a token refused (401/403), a schedule that does not exist
    /// (404), a request the service does not understand.
    fn ok(status: u16) -> Result<(), AskFailed> {
        match status {
            200 => Ok(()),
            401 | 403 => Err(AskFailed::Misconfigured(format!(
                "HTTP {status}: the token is refused"
            ))),
            404 => Err(AskFailed::Misconfigured(
                "HTTP 404: no such schedule or escalation policy".into(),
            )),
            other => Err(AskFailed::Misconfigured(format!("HTTP {other}"))),
        }
    }

    async fn pagerduty_oncalls(&self, filter: &str, id: &str) -> Answer {
        let pd = self
            .pagerduty
            .as_ref()
            .ok_or_else(|| AskFailed::Misconfigured("no PagerDuty token configured".into()))?;
        let mut people = Vec::new();
        for page in 0..MAX_PAGES {
            let offset = (page * 100).to_string();
            let (status, body) = self
                .get(
                    pd,
                    "/oncalls",
                    &[
                        (filter, id),
                        ("include[]", "users"),
                        ("earliest", "true"),
                        ("limit", "100"),
                        ("offset", &offset),
                    ],
                )
                .await?;
            Self::ok(status)?;
            let oncalls = body["oncalls"]
                .as_array()
                .ok_or_else(|| AskFailed::Misconfigured("an answer without oncalls".into()))?;
            for o in oncalls {
                if let (Some(email), Some(level)) =
                    (o["user"]["email"].as_str(), o["escalation_level"].as_u64())
                {
                    people.push(OnCall {
                        email: email.to_ascii_lowercase(),
                        level: level as u32,
                    });
                }
            }
            if body["more"] != true {
                return Ok(people);
            }
        }
        // Someone on call past the last page would count as not on call: never guess.
        Err(AskFailed::Misconfigured(format!(
            "more than {} on-calls: filter by a narrower schedule",
            MAX_PAGES * 100
        )))
    }

    async fn opsgenie_oncalls(&self, id: &str) -> Answer {
        let og = self
            .opsgenie
            .as_ref()
            .ok_or_else(|| AskFailed::Misconfigured("no Opsgenie token configured".into()))?;
        let (status, body) = self
            .get(
                og,
                &format!("/v2/schedules/{id}/on-calls"),
                &[("scheduleIdentifierType", "id"), ("flat", "true")],
            )
            .await?;
        Self::ok(status)?;
        let recipients = body["data"]["onCallRecipients"]
            .as_array()
            .ok_or_else(|| AskFailed::Misconfigured("an answer without onCallRecipients".into()))?;
        Ok(recipients
            .iter()
            .filter_map(Value::as_str)
            .map(|e| OnCall {
                email: e.to_ascii_lowercase(),
                level: 1,
            })
            .collect())
    }

    /// The incident, if PagerDuty knows it.
    pub async fn incident(&self, id: &IncidentId) -> Result<Incident, IncidentError> {
        let unavailable = |e: String| IncidentError::Unavailable(e);
        let pd = self
            .pagerduty
            .as_ref()
            .ok_or_else(|| unavailable("no PagerDuty token configured".into()))?;
        let path = format!("/incidents/{}", id.as_str());
        let ask = self.get(pd, &path, &[]);
        let (status, body) = tokio::time::timeout(self.timeout, ask)
            .await
            .map_err(|_| unavailable(format!("timed out after {} ms", self.timeout.as_millis())))?
            .map_err(|e| unavailable(e.to_string()))?;
        match status {
            200 => {
                let i = &body["incident"];
                let text = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                Ok(Incident {
                    // The id asked for (validated), never what the answer says.
                    id: id.as_str().to_owned(),
                    title: text("title"),
                    status: text("status"),
                    // Only an https link is ever shown as a link.
                    url: Some(text("html_url")).filter(|u| u.starts_with("https://")),
                })
            }
            404 => Err(IncidentError::NotFound(id.as_str().to_owned())),
            other => Err(unavailable(format!("HTTP {other}"))),
        }
    }

    /// Adds a note to the incident (as the secret's `from` user).
    pub async fn add_note(&self, id: &str, content: &str) -> Result<(), String> {
        let pd = self
            .pagerduty
            .as_ref()
            .ok_or("no PagerDuty token configured")?;
        let from = self
            .pagerduty_from
            .as_deref()
            .ok_or("the on-call secret's pagerduty.from (a PagerDuty user's e-mail) is not set")?;
        let r = self
            .http()
            .post(format!("{}/incidents/{id}/notes", pd.url))
            .header("Authorization", &pd.auth)
            .header("Accept", "application/vnd.pagerduty+json;version=2")
            .header("From", from)
            .json(&json!({"note": {"content": content}}))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        match r.status().as_u16() {
            200 | 201 => Ok(()),
            other => Err(format!("HTTP {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_and_urls() {
        let id = |s: &str| IncidentId::parse(s).map(|i| i.as_str().to_owned());
        assert_eq!(id("Q1ABC2DEF"), Ok("Q1ABC2DEF".into()));
        assert_eq!(
            id(" https://acme.pagerduty.com/incidents/Q1ABC2DEF "),
            Ok("Q1ABC2DEF".into())
        );
        assert_eq!(
            id("https://acme.pagerduty.com/incidents/Q1ABC2DEF/?x=1"),
            Ok("Q1ABC2DEF".into())
        );
        for bad in [
            "",
            "http://acme.pagerduty.com/incidents/Q1",
            "https://evil.example.com/incidents/Q1",
            "https://acme.pagerduty.com.evil.com/incidents/Q1",
            "https://acme.pagerduty.com/services/Q1",
            "Q1/../x",
            "<script>",
        ] {
            assert!(IncidentId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_parse_and_never_print() {
        let s = OncallSecrets::parse(r#"{"pagerduty":{"token":"u+pdtoken123","from":"bg@example.com"},"opsgenie":{"token":"og-key-1"}}"#).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("pdtoken") && !dbg.contains("og-key"), "{dbg}");
        assert!(OncallSecrets::parse("{}").unwrap().pagerduty.is_none());
        for bad in [
            r#"{"pagerduty":{"token":""}}"#,
            r#"{"pagerduty":"u+pdtoken123"}"#,
            r#"{"victorops":{}}"#,
            "u+pdtoken123",
        ] {
            let e = OncallSecrets::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("pdtoken"), "{e}");
        }
    }

    #[test]
    fn an_incident_is_open_until_resolved() {
        let i = |status: &str| Incident {
            id: "Q1".into(),
            title: String::new(),
            status: status.into(),
            url: None,
        };
        assert!(i("triggered").is_open() && i("acknowledged").is_open());
        assert!(!i("resolved").is_open());
    }
}
