//! `break-glass slack post-button`: posts a **Break Glass** button for one account and
//! permission set, after checking that the policy allows it. The bot token comes from the
//! Slack secret in Secrets Manager (read with the operator's AWS credentials) or from
//! `$SLACK_BOT_TOKEN`; it is never printed.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};

use crate::aws::secrets::SlackSecrets;
use crate::aws::sso::{Instance, PermissionSetNames, Sso};
use crate::domain::{AccountId, PermissionSetArn};
use crate::policy::Policy;
use crate::slack::api::SlackApi;
use crate::slack::payload::BREAK_GLASS_ACTION;

#[derive(Debug, Args)]
pub struct PostButtonArgs {
    /// The channel to post in (`C…` or `G…`; invite the bot there first).
    #[arg(long)]
    channel: String,
    /// The account the button grants (12 digits).
    #[arg(long)]
    account: String,
    /// The permission set: its ARN, or its name (looked up in Identity Center).
    #[arg(long)]
    permission_set: String,
    /// The policy the deploy ships: the button is refused unless an allow rule names this
    /// account and permission set.
    #[arg(long, env = "POLICY_FILE", default_value = "config/policy.toml")]
    policy: PathBuf,
    /// The Slack secret's id or ARN in Secrets Manager (its `bot_token` is used). Without
    /// it, the token is read from $SLACK_BOT_TOKEN.
    #[arg(long, env = "SLACK_SECRET_ARN")]
    secret_id: Option<String>,
    /// The Identity Center instance (default: the one instance of the organization).
    #[arg(long, env = "SSO_INSTANCE_ARN")]
    instance_arn: Option<String>,
    /// Slack's Web API.
    #[arg(long, env = "SLACK_API_URL", default_value = "https://slack.com/api")]
    slack_api_url: String,
    /// The button's text (default: "Break Glass: <account name or id> as <permission set>").
    #[arg(long)]
    label: Option<String>,
}

/// The message: one button whose `block_id` carries the account and whose value is the
/// permission set's ARN, as the webhook reads a Break Glass click.
pub fn button_message(account: &AccountId, arn: &PermissionSetArn, label: &str) -> Value {
    json!({
        "text": label,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!(
                ":rotating_light: *{}*\nEmergency access, time-boxed and reviewed: click only when you need it.",
                crate::slack::escape(label))}},
            {"type": "actions", "block_id": format!("bg_{}_button", account.as_str()), "elements": [
                {"type": "button", "action_id": BREAK_GLASS_ACTION, "style": "danger",
                 "text": {"type": "plain_text", "text": crate::domain::truncate(label, 75)},
                 "value": arn.as_str()}
            ]}
        ]
    })
}

pub fn post_button(a: &PostButtonArgs) -> Result<(), String> {
    let policy = Policy::load(&a.policy).map_err(|e| format!("{}: {e}", a.policy.display()))?;
    let account = AccountId::parse(&a.account).map_err(|e| format!("--account: {e}"))?;
    if !(a.channel.starts_with('C') || a.channel.starts_with('G'))
        || !a.channel[1..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err("--channel: not a Slack channel id (C… or G…)".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let (arn, name) = resolve(a, &sdk, &policy).await?;
        let rule = policy
            .button_rule(&account, &arn, name.as_deref())
            .map_err(|why| format!("refused, nothing posted: {why}"))?;
        let token = match &a.secret_id {
            Some(id) => SlackSecrets::load(&aws_sdk_secretsmanager::Client::new(&sdk), id)
                .await
                .map_err(|e| format!("the Slack secret: {e}"))?
                .bot_token
                .ok_or("the Slack secret has no bot_token")?,
            None => std::env::var("SLACK_BOT_TOKEN").map_err(
                |_| "no bot token: give --secret-id (or $SLACK_SECRET_ARN) or set $SLACK_BOT_TOKEN",
            )?,
        };
        let label = a.label.clone().unwrap_or_else(|| {
            format!(
                "Break Glass: {} as {}",
                policy.account_name(&account).unwrap_or(account.as_str()),
                name.as_deref().unwrap_or(arn.as_str())
            )
        });
        let slack = SlackApi::new(a.slack_api_url.clone(), Some(token));
        let ts = slack
            .post_message(&a.channel, &button_message(&account, &arn, &label), None)
            .await
            .map_err(|e| format!("chat.postMessage: {e}"))?;
        println!(
            "posted to {} (ts {ts}): {label} (allowed by rule {rule:?})",
            a.channel
        );
        Ok(())
    })
}

/// The permission set's ARN and, when it is known or the policy needs it, its name.
async fn resolve(
    a: &PostButtonArgs,
    sdk: &aws_config::SdkConfig,
    policy: &Policy,
) -> Result<(PermissionSetArn, Option<String>), String> {
    let given_arn = a.permission_set.starts_with("arn:");
    if given_arn && !policy.uses_permission_set_names() {
        let arn = PermissionSetArn::parse(&a.permission_set)
            .map_err(|e| format!("--permission-set: {e}"))?;
        return Ok((arn, None));
    }
    let sso = Sso::new(
        aws_sdk_ssoadmin::Client::new(sdk),
        aws_sdk_identitystore::Client::new(sdk),
    );
    let instance = match &a.instance_arn {
        Some(arn) => Instance {
            instance_arn: arn.clone(),
            identity_store_id: String::new(),
        },
        None => sso
            .discover_instance()
            .await
            .map_err(|e| format!("Identity Center: {e}"))?,
    };
    let names = PermissionSetNames::new(sso, instance);
    if given_arn {
        let arn = PermissionSetArn::parse(&a.permission_set)
            .map_err(|e| format!("--permission-set: {e}"))?;
        let name = names
            .name_of(&arn)
            .await
            .map_err(|e| format!("--permission-set: {e}"))?;
        Ok((arn, Some(name)))
    } else {
        let arn = names
            .arn_of(&a.permission_set)
            .await
            .map_err(|e| format!("--permission-set {:?}: {e}", a.permission_set))?;
        Ok((arn, Some(a.permission_set.clone())))
    }
}
