//! Slack at the edge: request signatures, interactivity payloads, replies and follow-ups.

pub mod api;
pub mod approval;
pub mod events;
pub mod home;
pub mod messages;
pub mod modal;
pub mod payload;
pub mod review;
pub mod signature;

/// A request's accounts in mrkdwn: the policy's name and the id of each, or the id alone.
pub fn accounts_mrkdwn(
    accounts: &[crate::domain::AccountId],
    policy: &crate::policy::Policy,
) -> String {
    accounts
        .iter()
        .map(|a| match policy.account_name(a) {
            Some(n) => format!("*{}* (`{a}`)", escape(n)),
            None => format!("`{a}`"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes text for Slack's mrkdwn/plain text (`&`, `<`, `>`), as Slack documents.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The JSON body of an ephemeral reply to an interaction (only the clicker sees it; the
/// original message is left as it is).
pub fn ephemeral(text: &str) -> String {
    serde_json::json!({
        "response_type": "ephemeral",
        "replace_original": false,
        "text": text,
    })
    .to_string()
}

/// The original demo's reply, kept word for word.
pub const ACCESS_INCOMING: &str = "Glass broken - access incoming";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape("<@U1> & <!here>"), "&lt;@U1&gt; &amp; &lt;!here&gt;");
    }

    #[test]
    fn ephemeral_reply() {
        let v: serde_json::Value = serde_json::from_str(&ephemeral(ACCESS_INCOMING)).unwrap();
        assert_eq!(v["response_type"], "ephemeral");
        assert_eq!(v["replace_original"], false);
        assert_eq!(v["text"], "Glass broken - access incoming");
    }
}
