//! Secrets Manager: the Slack signing secret(s) and bot token, read once per cold start.

use serde::Deserialize;

use crate::error::{Error, from_sdk};

/// `{"signing_secrets": ["current", "previous"], "bot_token": "xoxb-…"}`. Two signing secrets
/// are accepted while one is being rotated.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSecrets {
    pub signing_secrets: Vec<String>,
    #[serde(default)]
    pub bot_token: Option<String>,
}

impl std::fmt::Debug for SlackSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, even by accident.
        f.debug_struct("SlackSecrets")
            .field(
                "signing_secrets",
                &format_args!("[{} redacted]", self.signing_secrets.len()),
            )
            .field("bot_token", &self.bot_token.as_ref().map(|_| "redacted"))
            .finish()
    }
}

impl SlackSecrets {
    pub fn parse(json: &str) -> Result<Self, Error> {
        let s: SlackSecrets = serde_json::from_str(json).map_err(|e| {
            // serde's message may quote the input: keep only the position.
            Error::Config(format!(
                "Slack secret is not {{\"signing_secrets\": [...], \"bot_token\": ...}} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let n = s.signing_secrets.len();
        if !(1..=2).contains(&n) || s.signing_secrets.iter().any(|x| x.len() < 16) {
            return Err(Error::Config(
                "Slack secret needs one or two signing_secrets of at least 16 characters".into(),
            ));
        }
        Ok(s)
    }

    pub async fn load(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<Self, Error> {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| from_sdk("Secrets Manager GetSecretValue", e))?;
        Self::parse(out.secret_string().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_never_prints_secrets() {
        let s = SlackSecrets::parse(
            r#"{"signing_secrets":["0123456789abcdef0123"],"bot_token":"xoxb-1"}"#,
        )
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("0123456789abcdef") && !dbg.contains("xoxb"),
            "{dbg}"
        );
        for bad in [
            r#"{"signing_secrets":[]}"#,
            r#"{"signing_secrets":["short"]}"#,
            r#"{"signing_secrets":["0123456789abcdef","0123456789abcdef","0123456789abcdef"]}"#,
            r#"{"signing_secret":"0123456789abcdef0123"}"#,
            "0123456789abcdef0123",
        ] {
            let e = SlackSecrets::parse(bad).unwrap_err().to_string();
            assert!(
                !e.contains("0123456789abcdef"),
                "error leaks the secret: {e}"
            );
        }
    }
}
