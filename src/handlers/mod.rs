//! The Lambda side of the binary: build what the role needs, then serve events. The webhook
//! ([`webhook`]) and the worker ([`worker`]) each have a folder with one use case a file.
//!
//! In AWS each function pins its role with `APP_ROLE`. Under `cargo lambda watch` one process
//! serves every event, so with `APP_ROLE` unset the event's shape decides: an API Gateway /
//! function URL request goes to the webhook, anything else is a Step Functions task.
//! Each role's clients are built once: the worker's during init (where Lambda gives full CPU),
//! the webhook's on its first request (so its init makes no network call), and with `APP_ROLE`
//! unset on first use, so a webhook never pays for the worker.

pub mod approval;
pub mod home;
pub mod webhook;
pub mod worker;

use std::sync::Arc;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::aws::cloudtrail::Collector;
use crate::aws::mail::Mailer;
use crate::aws::secrets::SlackSecrets;
use crate::aws::sfn::Executions;
use crate::aws::sso::{Instance, PermissionSetNames, Sso};
use crate::aws::store::Store;
use crate::config::{Config, Role};
use crate::error::Error;
use crate::identity::Directory;
use crate::oncall::{Oncall, OncallSecrets};
use crate::policy::Policy;
use crate::slack::api::SlackApi;
use webhook::{Settings, Webhook};
use worker::Worker;

/// The on-call services, or none when their secret cannot be used: that must never stop
/// a revoke, the reconciler, End access now or a review. A gated request then finds no
/// on-call answer, which is a configuration fault: it needs an approver (never fails open),
/// and incident notes are skipped. The error is logged for the alarm on errors.
fn without_oncall_if_broken(oncall: Result<Option<Oncall>, Error>) -> Option<Oncall> {
    oncall.unwrap_or_else(|e| {
        tracing::error!(error = %e, "on-call services unusable: gated requests need an approver, incidents are not checked");
        None
    })
}

pub struct App {
    cfg: Config,
    sdk: SdkConfig,
    policy: Policy,
    secrets: OnceCell<SlackSecrets>,
    instance: OnceCell<Instance>,
    webhook: OnceCell<Webhook>,
    worker: OnceCell<Worker>,
}

impl App {
    /// Builds the app; the policy is validated here and a broken one fails closed.
    pub async fn init(cfg: Config, sdk: SdkConfig) -> Result<Arc<Self>, Error> {
        let policy =
            Policy::load(&cfg.policy_file).map_err(|e| Error::Config(format!("policy: {e}")))?;
        let (pagerduty, opsgenie) = policy.services();
        if (pagerduty || opsgenie) && cfg.oncall_secret_arn.is_none() {
            return Err(Error::Config(
                "the policy gates rules on who is on call or asks for incidents, but ONCALL_SECRET_ARN is not set".into(),
            ));
        }
        let app = Arc::new(App {
            cfg,
            sdk,
            policy,
            secrets: OnceCell::new(),
            instance: OnceCell::new(),
            webhook: OnceCell::new(),
            worker: OnceCell::new(),
        });
        // The worker builds its clients during init, where Lambda gives full CPU. The webhook
        // reads its secret on the first request instead: init then makes no network call, so
        // the Runtime API is polled within milliseconds of a cold start.
        if app.cfg.role == Role::Worker {
            app.worker().await?;
        }
        Ok(app)
    }

    async fn secrets(&self) -> Result<&SlackSecrets, Error> {
        self.secrets
            .get_or_try_init(|| async {
                let sm = aws_sdk_secretsmanager::Client::new(&self.sdk);
                SlackSecrets::load(&sm, &self.cfg.slack_secret_arn).await
            })
            .await
    }

    fn sso(&self) -> Sso {
        Sso::new(
            aws_sdk_ssoadmin::Client::new(&self.sdk),
            aws_sdk_identitystore::Client::new(&self.sdk),
        )
    }

    async fn instance(&self) -> Result<&Instance, Error> {
        self.instance
            .get_or_try_init(|| async {
                match (&self.cfg.sso_instance_arn, &self.cfg.identity_store_id) {
                    (Some(i), Some(s)) => Ok(Instance {
                        instance_arn: i.clone(),
                        identity_store_id: s.clone(),
                    }),
                    _ => self.sso().discover_instance().await,
                }
            })
            .await
    }

    /// The on-call services a role needs, with their tokens (`None` when it needs none): the
    /// webhook every service the policy uses; the worker only PagerDuty, for the notes on
    /// incidents. A policy that needs a token the secret lacks fails closed here.
    async fn oncall(&self, role: Role) -> Result<Option<Oncall>, Error> {
        let (pagerduty, opsgenie) = match role {
            Role::Worker => (self.policy.rules.iter().any(|r| r.incident_required), false),
            _ => self.policy.services(),
        };
        let Some(arn) = self.cfg.oncall_secret_arn.as_deref() else {
            return Ok(None);
        };
        if !(pagerduty || opsgenie) {
            return Ok(None);
        }
        let sm = aws_sdk_secretsmanager::Client::new(&self.sdk);
        let secrets = OncallSecrets::load(&sm, arn).await?;
        let oncall = Oncall::new(
            &secrets,
            &self.cfg.pagerduty_api_url,
            &self.cfg.opsgenie_api_url,
            std::time::Duration::from_secs(self.cfg.oncall_cache.as_secs()),
            self.cfg.oncall_timeout,
        );
        let (has_pd, has_og) = oncall.configured();
        if (pagerduty && !has_pd) || (opsgenie && !has_og) {
            let which = if pagerduty && !has_pd {
                "pagerduty"
            } else {
                "opsgenie"
            };
            return Err(Error::Config(format!(
                "the policy uses {which}, but the on-call secret has no \"{which}\" token"
            )));
        }
        Ok(Some(oncall))
    }

    fn slack(&self, secrets: &SlackSecrets) -> SlackApi {
        SlackApi::new(self.cfg.slack_api_url.clone(), secrets.bot_token.clone())
    }

    async fn webhook(&self) -> Result<&Webhook, Error> {
        self.webhook
            .get_or_try_init(|| async {
                // The on-call tokens are read at the same time as the Slack secret.
                let (secrets, oncall) = tokio::join!(self.secrets(), self.oncall(Role::Webhook));
                let (secrets, oncall) = (secrets?, without_oncall_if_broken(oncall));
                let instance = self.instance().await?.clone();
                Ok::<_, Error>(Webhook {
                    settings: Settings {
                        signing_secrets: secrets.signing_secrets.clone(),
                        team_id: self.cfg.slack_team_id.clone(),
                        api_app_id: self.cfg.slack_api_app_id.clone(),
                        cloudtrail_delay: self.cfg.cloudtrail_delay,
                    },
                    policy: self.policy.clone(),
                    store: Store::new(
                        aws_sdk_dynamodb::Client::new(&self.sdk),
                        &self.cfg.table_name,
                    ),
                    executions: Executions::new(
                        aws_sdk_sfn::Client::new(&self.sdk),
                        self.cfg.state_machine_arn.as_str(),
                    ),
                    directory: Directory::new(
                        self.slack(secrets),
                        self.sso(),
                        instance.clone(),
                        self.cfg.slack_team_id.clone(),
                        std::time::Duration::from_secs(self.cfg.identity_cache.as_secs()),
                    ),
                    names: PermissionSetNames::new(self.sso(), instance),
                    organizations: crate::aws::organizations::Organizations::new(
                        aws_sdk_organizations::Client::new(&self.sdk),
                        self.cfg.accounts_cache,
                    ),
                    oncall,
                    refusal_retention: self.cfg.refusal_retention,
                })
            })
            .await
    }

    async fn worker(&self) -> Result<&Worker, Error> {
        self.worker
            .get_or_try_init(|| async {
                let report = self.cfg.report.as_ref().ok_or_else(|| {
                    Error::Config("the worker needs REPORT_SENDER and REPORT_RECIPIENTS".into())
                })?;
                let (secrets, oncall) = tokio::join!(self.secrets(), self.oncall(Role::Worker));
                let (secrets, oncall) = (secrets?, without_oncall_if_broken(oncall));
                let instance = self.instance().await?.clone();
                Ok::<_, Error>(Worker {
                    store: Store::new(
                        aws_sdk_dynamodb::Client::new(&self.sdk),
                        &self.cfg.table_name,
                    ),
                    executions: Executions::new(
                        aws_sdk_sfn::Client::new(&self.sdk),
                        self.cfg.state_machine_arn.as_str(),
                    ),
                    reconcile_grace: self.cfg.reconcile_grace,
                    reconcile_limits: self.cfg.reconcile,
                    pace: std::sync::Arc::new(crate::aws::pace::Pace::per_second(
                        self.cfg.reconcile.calls_per_second,
                    )),
                    hold_recheck: self.cfg.hold_recheck,
                    cloudtrail_delay: self.cfg.cloudtrail_delay,
                    end_sessions_margin: self.cfg.end_sessions_margin,
                    sso: self.sso(),
                    names: PermissionSetNames::new(self.sso(), instance.clone()),
                    collector: Collector::new(
                        &self.sdk,
                        &report.regions,
                        crate::aws::sts::own_account(&self.sdk).await,
                        report.role_name.clone(),
                        instance.partition(),
                    ),
                    instance,
                    mailer: Mailer::new(
                        aws_sdk_ses::Client::new(&self.sdk),
                        report.sender.as_str(),
                    ),
                    slack: self.slack(secrets),
                    recipients: report.recipients.iter().map(|r| r.to_string()).collect(),
                    report_to_requester: report.to_requester,
                    policy: self.policy.clone(),
                    report_margin: report.margin,
                    max_rows: report.max_rows,
                    oncall,
                })
            })
            .await
    }

    /// Serves one Lambda event.
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        let http = is_http_event(&payload);
        match (self.cfg.role, http) {
            (Role::Worker, true) => {
                Err(Error::InvalidInput("the worker got an HTTP request".into()))
            }
            (Role::Webhook, false) => Err(Error::InvalidInput(
                "the webhook got a non-HTTP event".into(),
            )),
            (_, true) => Ok(self.handle_http(payload).await),
            (_, false) => self.worker().await?.handle(payload).await,
        }
    }

    async fn handle_http(&self, payload: Value) -> Value {
        let request: lambda_http::Request =
            match serde_json::from_value::<lambda_http::request::LambdaRequest>(payload) {
                Ok(r) => r.into(),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable HTTP event");
                    return http_response(
                        400,
                        Some(json!({"error": "unreadable request"}).to_string()),
                    );
                }
            };
        let webhook = match self.webhook().await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "webhook unavailable");
                return http_response(500, None);
            }
        };
        let reply = webhook
            .handle(request.method(), request.headers(), request.body().as_ref())
            .await;
        http_response(reply.status.as_u16(), reply.body)
    }
}

/// The HTTP request inside an API Gateway / function URL event; a base64 body is decoded, so
/// the signature is checked over the bytes Slack sent.
pub fn http_request(payload: Value) -> Result<lambda_http::Request, serde_json::Error> {
    serde_json::from_value::<lambda_http::request::LambdaRequest>(payload).map(Into::into)
}

/// An API Gateway or function URL request, as opposed to a task payload. Only the HTTP API
/// (payload v2) shape is parsed; a REST API event is refused as unreadable.
pub fn is_http_event(v: &Value) -> bool {
    v.get("requestContext").is_some()
        && (v.get("httpMethod").is_some() || v.pointer("/requestContext/http").is_some())
}

/// A payload-v2 proxy response (HTTP API and function URLs; `cargo lambda watch` insists on
/// `cookies`).
fn http_response(status: u16, body: Option<String>) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": body.unwrap_or_default(),
        "isBase64Encoded": false,
        "cookies": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_http_events_from_tasks() {
        assert!(is_http_event(
            &json!({"version": "2.0", "requestContext": {"http": {"method": "POST"}}})
        ));
        assert!(is_http_event(
            &json!({"httpMethod": "POST", "requestContext": {}})
        ));
        assert!(!is_http_event(
            &json!({"type": "grant", "request_id": "bg-x"})
        ));
        assert!(!is_http_event(&json!({"requestContext": {}})));
    }

    #[test]
    fn a_base64_body_is_verified_over_the_decoded_bytes() {
        use base64::Engine;
        let secret = "test-signing-secret-0123456789";
        let body = b"payload=%7B%22type%22%3A%22block_actions%22%7D";
        let ts = "1800000000";
        let sig = crate::slack::signature::sign(secret.as_bytes(), ts, body);
        let event = json!({
            "version": "2.0", "routeKey": "POST /slack", "rawPath": "/slack", "rawQueryString": "",
            "headers": {"content-type": "application/x-www-form-urlencoded",
                        "x-slack-request-timestamp": ts, "x-slack-signature": sig},
            "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "x.example",
                               "domainPrefix": "x", "requestId": "r", "routeKey": "POST /slack", "stage": "$default",
                               "time": "24/Nov/2026:08:00:00 +0000", "timeEpoch": 1800000000000u64,
                               "http": {"method": "POST", "path": "/slack", "protocol": "HTTP/1.1",
                                        "sourceIp": "192.0.2.1", "userAgent": "Slackbot"}},
            "body": base64::engine::general_purpose::STANDARD.encode(body),
            "isBase64Encoded": true,
        });
        assert!(is_http_event(&event));
        let req = http_request(event).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.body().as_ref(), body);
        let h = req.headers();
        let got = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
        assert_eq!(
            crate::slack::signature::verify(
                &[secret],
                got("x-slack-request-timestamp"),
                got("x-slack-signature"),
                req.body().as_ref(),
                1_800_000_000
            ),
            Ok(())
        );
    }
}
