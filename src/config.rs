//! Typed configuration from the environment, validated at cold start.
//!
//! Secrets never come from here: the Slack signing secret(s) and bot token are read from
//! Secrets Manager (`SLACK_SECRET_ARN`) once per cold start.

use std::path::PathBuf;

use crate::domain::{Duration, EmailAddress, StateMachineArn};

/// Which part of the product this process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The Slack interactivity endpoint (API Gateway / function URL events).
    Webhook,
    /// Step Functions tasks.
    Worker,
    /// `APP_ROLE` unset (local `cargo lambda watch`): tell the roles apart by the event's shape.
    Auto,
}

impl Role {
    pub fn from_env_value(v: Option<&str>) -> Result<Self, String> {
        match v.map(str::trim) {
            None | Some("") => Ok(Role::Auto),
            Some("webhook") => Ok(Role::Webhook),
            Some("worker") => Ok(Role::Worker),
            Some(other) => Err(format!(
                "APP_ROLE must be \"webhook\" or \"worker\", got {:?}",
                crate::domain::truncate(other, 40)
            )),
        }
    }
    fn serves_worker(self) -> bool {
        matches!(self, Role::Worker | Role::Auto)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    pub table_name: String,
    pub policy_file: PathBuf,
    /// The state machine every allowed click starts (webhook); whose executions the
    /// reconciler looks at (worker).
    pub state_machine_arn: StateMachineArn,
    /// Secrets Manager id of `{"signing_secrets": [...], "bot_token": "..."}`.
    pub slack_secret_arn: String,
    /// When set, requests from another workspace or app are refused.
    pub slack_team_id: Option<String>,
    pub slack_api_app_id: Option<String>,
    /// The Slack Web API (a local fake in tests).
    pub slack_api_url: String,
    /// How long to wait after revoking before reading CloudTrail (it lags up to ~15 min).
    pub cloudtrail_delay: Duration,
    /// Longest one attempt of an AWS call may take before the SDK retries it.
    pub aws_call_timeout: Duration,
    /// The longest one Hold waits before it looks at the lease again: a lost End access now
    /// callback holds access at most this long past the lease's end.
    pub hold_recheck: Duration,
    /// Identity Center instance; discovered with `ListInstances` when not set.
    pub sso_instance_arn: Option<String>,
    pub identity_store_id: Option<String>,
    /// What the worker needs to report; `None` when this process serves only the webhook.
    pub report: Option<ReportSettings>,
    /// How long past its end a lease whose execution still runs is left to the state
    /// machine before the reconciler revokes it.
    pub reconcile_grace: Duration,
    /// Added to the permission set's session duration before a deny on old sessions is
    /// lifted (clock skew between us and AWS).
    pub end_sessions_margin: Duration,
    /// How long who a Slack user is (and their groups) is remembered: a change in Identity
    /// Center or Slack takes effect within this.
    pub identity_cache: Duration,
    /// Secrets Manager id of the on-call services' tokens (needed when the policy gates a
    /// rule on PagerDuty or Opsgenie, or asks for incidents).
    pub oncall_secret_arn: Option<String>,
    pub pagerduty_api_url: String,
    pub opsgenie_api_url: String,
    /// How long who is on call is remembered (0: not at all).
    pub oncall_cache: Duration,
    /// The longest one on-call or incident lookup may take (the click must answer Slack
    /// within 3 s).
    pub oncall_timeout: std::time::Duration,
    /// How long a refused request's audit entry is kept (each refusal is its own entry; the
    /// table's TTL removes them after this, so a flood cannot grow the table without bound).
    pub refusal_retention: Duration,
    /// How long the organization's account list (the modal's type-ahead) is kept.
    pub accounts_cache: std::time::Duration,
    /// How much one reconcile run may do.
    pub reconcile: ReconcileLimits,
}

/// How much one reconcile run may do: the sweep of the policy's pairs stops at either limit
/// and the next run continues where it stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconcileLimits {
    /// Wall-clock time for the sweep (`RECONCILE_BUDGET_SECONDS`, default 600: well inside
    /// a 15-minute Lambda).
    pub budget: std::time::Duration,
    /// Pairs listed per run at most (`RECONCILE_PAIRS_PER_RUN`, default 2000).
    pub pairs_per_run: usize,
    /// Identity Center calls a second (`IDENTITY_CENTER_CALLS_PER_SECOND`, default 10).
    pub calls_per_second: f64,
}

impl Default for ReconcileLimits {
    fn default() -> Self {
        ReconcileLimits {
            budget: std::time::Duration::from_secs(600),
            pairs_per_run: 2000,
            calls_per_second: 10.0,
        }
    }
}

/// The worker's report settings.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub sender: EmailAddress,
    pub recipients: Vec<EmailAddress>,
    pub regions: Vec<String>,
    /// Added before the grant and after the revoke when reading CloudTrail.
    pub margin: Duration,
    /// The read-only role assumed in the target account to read its CloudTrail.
    pub role_name: Option<String>,
    /// Most timeline rows the report mail carries; the full timeline goes as a CSV.
    pub max_rows: usize,
    /// Also mail the report to the requester (`REPORT_TO_REQUESTER=true`).
    pub to_requester: bool,
}

/// Every problem with the environment at once, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let opt = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let role = Role::from_env_value(get("APP_ROLE").as_deref()).unwrap_or_else(|e| {
            problems.push(e);
            Role::Auto
        });
        let mut required = |k: &str, needed: bool| {
            let v = opt(k);
            if needed && v.is_none() {
                problems.push(format!("{k} is not set"));
            }
            v
        };
        let table_name = required("TABLE_NAME", true);
        let state_machine_arn = required("STATE_MACHINE_ARN", true);
        let slack_secret_arn = required("SLACK_SECRET_ARN", true);
        let report_sender = required("REPORT_SENDER", role.serves_worker());
        let recipients = required("REPORT_RECIPIENTS", role.serves_worker());
        required("AWS_REGION", true);
        let state_machine_arn = state_machine_arn.and_then(|arn| {
            StateMachineArn::parse(&arn)
                .map_err(|e| problems.push(format!("STATE_MACHINE_ARN: {e}")))
                .ok()
        });
        let mut address = |v: &str| {
            EmailAddress::parse(v)
                .map_err(|e| problems.push(format!("REPORT_SENDER/REPORT_RECIPIENTS: {e}")))
                .ok()
        };
        let report_sender = report_sender.and_then(|v| address(&v));
        let report_recipients: Vec<EmailAddress> = recipients
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(&mut address)
            .collect();

        let seconds = |k: &str, default: u64, problems: &mut Vec<String>| match opt(k) {
            None => Duration::from_secs(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n <= 86_400 => Duration::from_secs(n),
                _ => {
                    problems.push(format!(
                        "{k} must be whole seconds between 0 and 86400, got {v:?}"
                    ));
                    Duration::from_secs(default)
                }
            },
        };
        let cloudtrail_delay = seconds("CLOUDTRAIL_DELAY_SECONDS", 900, &mut problems);
        let report_margin = seconds("REPORT_MARGIN_SECONDS", 300, &mut problems);
        let hold_recheck = seconds("HOLD_RECHECK_SECONDS", 3600, &mut problems);
        if opt("LEASE_POLL_SECONDS").is_some() {
            problems.push("LEASE_POLL_SECONDS is no longer used: End access now acts at once; HOLD_RECHECK_SECONDS (default 3600) sets how often a hold re-checks its lease".into());
        }
        let reconcile_grace = seconds("RECONCILE_GRACE_SECONDS", 900, &mut problems);
        let end_sessions_margin = seconds("END_SESSIONS_MARGIN_SECONDS", 300, &mut problems);
        let identity_cache = seconds("IDENTITY_CACHE_SECONDS", 300, &mut problems);
        if identity_cache.as_secs() > 3600 {
            problems.push("IDENTITY_CACHE_SECONDS must be at most 3600 (a refusal must take effect within the hour)".into());
        }
        let refusal_retention = match opt("REFUSAL_AUDIT_DAYS").map(|v| v.parse::<u64>()) {
            None => Duration::from_secs(400 * 86_400),
            Some(Ok(n)) if (1..=3650).contains(&n) => Duration::from_secs(n * 86_400),
            Some(_) => {
                problems.push("REFUSAL_AUDIT_DAYS must be whole days between 1 and 3650".into());
                Duration::from_secs(400 * 86_400)
            }
        };
        let report_to_requester = match opt("REPORT_TO_REQUESTER").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                problems.push(format!(
                    "REPORT_TO_REQUESTER must be true or false, got {other:?}"
                ));
                false
            }
        };
        let report_max_rows = match opt("REPORT_MAX_ROWS").map(|v| v.parse::<usize>()) {
            None => 2_000,
            Some(Ok(n)) if (1..=20_000).contains(&n) => n,
            Some(_) => {
                problems.push("REPORT_MAX_ROWS must be a number between 1 and 20000".into());
                2_000
            }
        };
        let aws_call_timeout = seconds("AWS_CALL_TIMEOUT_SECONDS", 10, &mut problems);
        if !(1..=120).contains(&aws_call_timeout.as_secs()) {
            problems.push("AWS_CALL_TIMEOUT_SECONDS must be between 1 and 120".into());
        }
        if hold_recheck.as_secs() == 0 {
            problems.push("HOLD_RECHECK_SECONDS must be between 1 and 86400".into());
        }

        let oncall_cache = seconds("ONCALL_CACHE_SECONDS", 30, &mut problems);
        if oncall_cache.as_secs() > 300 {
            problems
                .push("ONCALL_CACHE_SECONDS must be at most 300 (who is on call changes)".into());
        }
        let oncall_timeout = match opt("ONCALL_TIMEOUT_MS").map(|v| v.parse::<u64>()) {
            None => std::time::Duration::from_millis(1500),
            Some(Ok(n)) if (100..=2500).contains(&n) => std::time::Duration::from_millis(n),
            Some(_) => {
                problems.push(
                    "ONCALL_TIMEOUT_MS must be between 100 and 2500 (Slack waits 3 s)".into(),
                );
                std::time::Duration::from_millis(1500)
            }
        };
        let accounts_cache = seconds("ACCOUNTS_CACHE_SECONDS", 300, &mut problems);
        if accounts_cache.as_secs() > 3600 {
            problems.push("ACCOUNTS_CACHE_SECONDS must be at most 3600".into());
        }
        let mut reconcile = ReconcileLimits::default();
        match opt("RECONCILE_BUDGET_SECONDS").map(|v| v.parse::<u64>()) {
            None => {}
            Some(Ok(n)) if (1..=840).contains(&n) => {
                reconcile.budget = std::time::Duration::from_secs(n);
            }
            Some(_) => problems.push(
                "RECONCILE_BUDGET_SECONDS must be between 1 and 840 (a Lambda runs at most 900 s)"
                    .into(),
            ),
        }
        match opt("RECONCILE_PAIRS_PER_RUN").map(|v| v.parse::<usize>()) {
            None => {}
            Some(Ok(n)) if (1..=100_000).contains(&n) => reconcile.pairs_per_run = n,
            Some(_) => problems.push("RECONCILE_PAIRS_PER_RUN must be between 1 and 100000".into()),
        }
        match opt("IDENTITY_CENTER_CALLS_PER_SECOND").map(|v| v.parse::<f64>()) {
            None => {}
            Some(Ok(n)) if n > 0.0 && n <= 50.0 => reconcile.calls_per_second = n,
            Some(_) => problems.push(
                "IDENTITY_CENTER_CALLS_PER_SECOND must be a number above 0 and at most 50".into(),
            ),
        }
        let mut service_url = |k: &str, default: &str| {
            let v = opt(k).unwrap_or_else(|| default.to_owned());
            // Plain http only to this machine (the local test bed's fakes).
            let loopback = v
                .strip_prefix("http://")
                .map(|rest| rest.split(['/', ':']).next().unwrap_or_default())
                .is_some_and(|host| host == "127.0.0.1" || host == "localhost");
            if !(v.starts_with("https://") || loopback) {
                problems.push(format!("{k} must be an https:// URL"));
            }
            v
        };
        let pagerduty_api_url = service_url("PAGERDUTY_API_URL", "https://api.pagerduty.com");
        let opsgenie_api_url = service_url("OPSGENIE_API_URL", "https://api.opsgenie.com");

        let sso_instance_arn = opt("SSO_INSTANCE_ARN");
        let identity_store_id = opt("IDENTITY_STORE_ID");
        if sso_instance_arn.is_some() != identity_store_id.is_some() {
            problems.push("set both SSO_INSTANCE_ARN and IDENTITY_STORE_ID, or neither (then ListInstances finds them)".into());
        }

        let cloudtrail_regions = match opt("CLOUDTRAIL_REGIONS") {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => opt("AWS_REGION").into_iter().collect(),
        };

        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        // Every one of these was checked above: a gap here is a bug, reported like a problem.
        let (Some(table_name), Some(state_machine_arn), Some(slack_secret_arn)) =
            (table_name, state_machine_arn, slack_secret_arn)
        else {
            return Err(ConfigError(vec!["required settings missing".into()]));
        };
        let report = match (role.serves_worker(), report_sender) {
            (true, Some(sender)) => Some(ReportSettings {
                sender,
                recipients: report_recipients,
                regions: cloudtrail_regions,
                margin: report_margin,
                role_name: opt("REPORT_ROLE_NAME"),
                max_rows: report_max_rows,
                to_requester: report_to_requester,
            }),
            (true, None) => return Err(ConfigError(vec!["REPORT_SENDER is not set".into()])),
            (false, _) => None,
        };
        Ok(Config {
            role,
            table_name,
            policy_file: opt("POLICY_FILE")
                .unwrap_or_else(|| "config/policy.toml".into())
                .into(),
            state_machine_arn,
            slack_secret_arn,
            slack_team_id: opt("SLACK_TEAM_ID"),
            slack_api_app_id: opt("SLACK_API_APP_ID"),
            slack_api_url: opt("SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into()),
            cloudtrail_delay,
            hold_recheck,
            aws_call_timeout,
            sso_instance_arn,
            identity_store_id,
            report,
            reconcile_grace,
            end_sessions_margin,
            identity_cache,
            refusal_retention,
            oncall_secret_arn: opt("ONCALL_SECRET_ARN"),
            pagerduty_api_url,
            opsgenie_api_url,
            oncall_cache,
            oncall_timeout,
            accounts_cache: std::time::Duration::from_secs(accounts_cache.as_secs()),
            reconcile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    const FULL: &[(&str, &str)] = &[
        ("TABLE_NAME", "t"),
        ("AWS_REGION", "eu-west-1"),
        (
            "STATE_MACHINE_ARN",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:bg",
        ),
        ("SLACK_SECRET_ARN", "break-glass/slack"),
        ("REPORT_SENDER", "bg@example.com"),
        ("REPORT_RECIPIENTS", "sec@example.com, soc@example.com"),
    ];

    #[test]
    fn full_config() {
        let c = cfg(FULL).unwrap();
        assert_eq!(c.role, Role::Auto);
        let report = c.report.expect("the worker's settings");
        assert_eq!(
            report
                .recipients
                .iter()
                .map(EmailAddress::as_str)
                .collect::<Vec<_>>(),
            ["sec@example.com", "soc@example.com"]
        );
        assert_eq!(c.cloudtrail_delay.as_secs(), 900);
        assert_eq!(report.regions, ["eu-west-1"]);
    }

    #[test]
    fn lists_everything_missing_at_once() {
        let e = cfg(&[]).unwrap_err();
        let all = e.to_string();
        for k in [
            "TABLE_NAME",
            "STATE_MACHINE_ARN",
            "SLACK_SECRET_ARN",
            "REPORT_SENDER",
            "REPORT_RECIPIENTS",
            "AWS_REGION",
        ] {
            assert!(all.contains(k), "{k} missing from {all}");
        }
    }

    #[test]
    fn a_role_needs_only_its_own_settings() {
        let c = cfg(&[
            ("APP_ROLE", "webhook"),
            ("TABLE_NAME", "t"),
            ("AWS_REGION", "r"),
            (
                "STATE_MACHINE_ARN",
                "arn:aws:states:r:123456789012:stateMachine:bg",
            ),
            ("SLACK_SECRET_ARN", "s"),
        ])
        .unwrap();
        assert_eq!(c.role, Role::Webhook);
        assert!(c.report.is_none(), "the webhook has no report settings");
        let e = cfg(&[
            ("APP_ROLE", "worker"),
            ("TABLE_NAME", "t"),
            ("AWS_REGION", "r"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().contains("REPORT_SENDER") && e.to_string().contains("STATE_MACHINE_ARN"),
            "{e}"
        );
    }

    #[test]
    fn bad_values() {
        let mut v = FULL.to_vec();
        v.push(("APP_ROLE", "admin"));
        v.push(("CLOUDTRAIL_DELAY_SECONDS", "soon"));
        v.push(("SSO_INSTANCE_ARN", "arn:aws:sso:::instance/ssoins-1"));
        v.push(("REPORT_RECIPIENTS", "not-an-email"));
        v.push(("STATE_MACHINE_ARN", "bg"));
        v.push(("RECONCILE_GRACE_SECONDS", "-5"));
        v.push(("HOLD_RECHECK_SECONDS", "0"));
        v.push(("LEASE_POLL_SECONDS", "60"));
        let e = cfg(&v).unwrap_err();
        assert_eq!(e.0.len(), 8, "{e}");
        assert!(
            e.to_string()
                .contains("LEASE_POLL_SECONDS is no longer used"),
            "a setting that means nothing any more is named: {e}"
        );
    }

    #[test]
    fn on_call_settings() {
        let c = cfg(FULL).unwrap();
        assert_eq!(c.oncall_secret_arn, None);
        assert_eq!(c.pagerduty_api_url, "https://api.pagerduty.com");
        assert_eq!(c.opsgenie_api_url, "https://api.opsgenie.com");
        assert_eq!(c.oncall_cache.as_secs(), 30);
        assert_eq!(c.oncall_timeout.as_millis(), 1500);
        let mut v = FULL.to_vec();
        v.extend([
            ("ONCALL_SECRET_ARN", "break-glass/oncall"),
            ("OPSGENIE_API_URL", "https://api.eu.opsgenie.com"),
            ("PAGERDUTY_API_URL", "http://127.0.0.1:8080"),
            ("ONCALL_CACHE_SECONDS", "0"),
            ("ONCALL_TIMEOUT_MS", "800"),
        ]);
        let c = cfg(&v).unwrap();
        assert_eq!(c.oncall_secret_arn.as_deref(), Some("break-glass/oncall"));
        assert_eq!(c.opsgenie_api_url, "https://api.eu.opsgenie.com");
        assert_eq!(c.oncall_cache.as_secs(), 0, "0 turns the cache off");
        assert_eq!(c.oncall_timeout.as_millis(), 800);
        let mut v = FULL.to_vec();
        v.extend([
            ("PAGERDUTY_API_URL", "http://127.0.0.1.evil.example.com"),
            ("ONCALL_CACHE_SECONDS", "301"),
            ("ONCALL_TIMEOUT_MS", "3000"),
        ]);
        let e = cfg(&v).unwrap_err();
        assert_eq!(e.0.len(), 3, "{e}");
        for k in [
            "PAGERDUTY_API_URL",
            "ONCALL_CACHE_SECONDS",
            "ONCALL_TIMEOUT_MS",
        ] {
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn scale_settings() {
        let c = cfg(FULL).unwrap();
        assert_eq!(c.reconcile, ReconcileLimits::default());
        assert_eq!(c.accounts_cache.as_secs(), 300);
        let mut v = FULL.to_vec();
        v.extend([
            ("RECONCILE_BUDGET_SECONDS", "120"),
            ("RECONCILE_PAIRS_PER_RUN", "3"),
            ("IDENTITY_CENTER_CALLS_PER_SECOND", "2.5"),
            ("ACCOUNTS_CACHE_SECONDS", "0"),
        ]);
        let c = cfg(&v).unwrap();
        assert_eq!(c.reconcile.budget.as_secs(), 120);
        assert_eq!(c.reconcile.pairs_per_run, 3);
        assert_eq!(c.reconcile.calls_per_second, 2.5);
        assert!(c.accounts_cache.is_zero());
        let mut v = FULL.to_vec();
        v.extend([
            ("RECONCILE_BUDGET_SECONDS", "900"),
            ("RECONCILE_PAIRS_PER_RUN", "0"),
            ("IDENTITY_CENTER_CALLS_PER_SECOND", "-1"),
            ("ACCOUNTS_CACHE_SECONDS", "7200"),
        ]);
        let e = cfg(&v).unwrap_err();
        assert_eq!(e.0.len(), 4, "{e}");
        for k in [
            "RECONCILE_BUDGET_SECONDS",
            "RECONCILE_PAIRS_PER_RUN",
            "IDENTITY_CENTER_CALLS_PER_SECOND",
            "ACCOUNTS_CACHE_SECONDS",
        ] {
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
    }
}
