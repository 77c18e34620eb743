//! The Events API (JSON, on the same URL as interactivity): Slack's `url_verification`
//! handshake and `app_home_opened`. Any other event is acknowledged and ignored.

use serde::Deserialize;

use super::payload::{Interaction, Origin, PayloadError, bad, peek_type};

/// Parses an Events API request (JSON): the `url_verification` handshake, or an
/// `event_callback` whose event is `app_home_opened` on the Home tab; any other event is
/// ignored (answered 200, so that Slack does not retry it).
pub fn parse_event(json: &[u8]) -> Result<Interaction, PayloadError> {
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Envelope {
        UrlVerification {
            challenge: String,
        },
        EventCallback {
            team_id: String,
            api_app_id: Option<String>,
            event: Event,
        },
        #[serde(other)]
        Other,
    }
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        user: Option<String>,
        tab: Option<String>,
    }
    let envelope: Envelope =
        serde_json::from_slice(json).map_err(|e| PayloadError::BadJson(e.to_string()))?;
    match envelope {
        Envelope::UrlVerification { challenge } => {
            if challenge.is_empty() || challenge.len() > 512 {
                return Err(bad("challenge", "empty or too long"));
            }
            Ok(Interaction::UrlVerification { challenge })
        }
        Envelope::EventCallback {
            team_id,
            api_app_id,
            event,
        } => match (event.kind.as_str(), event.tab.as_deref(), event.user) {
            ("app_home_opened", Some("home"), Some(user)) if !user.is_empty() => {
                Ok(Interaction::HomeOpened(Origin {
                    team_id,
                    api_app_id,
                    user_id: user,
                }))
            }
            _ => Ok(Interaction::Ignored {
                team_id,
                api_app_id,
            }),
        },
        Envelope::Other => Err(PayloadError::UnknownType(peek_type(
            std::str::from_utf8(json).unwrap_or_default(),
        ))),
    }
}
