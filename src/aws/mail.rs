//! SES: the report e-mail.

use aws_sdk_ses::types::{Body, Content, Destination, Message};

use crate::error::{Error, from_sdk};

#[derive(Clone)]
pub struct Mailer {
    client: aws_sdk_ses::Client,
    sender: String,
}

impl Mailer {
    pub fn new(client: aws_sdk_ses::Client, sender: impl Into<String>) -> Self {
        Self {
            client,
            sender: sender.into(),
        }
    }

    /// Sends one message with an HTML and a plain-text part; returns the SES message id.
    pub async fn send(
        &self,
        to: &[String],
        subject: &str,
        html: &str,
        text: &str,
    ) -> Result<String, Error> {
        let content = |s: &str| {
            Content::builder()
                .data(s)
                .charset("UTF-8")
                .build()
                .map_err(|e| Error::InvalidInput(e.to_string()))
        };
        let out = self
            .client
            .send_email()
            .source(&self.sender)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .message(
                Message::builder()
                    .subject(content(subject)?)
                    .body(
                        Body::builder()
                            .html(content(html)?)
                            .text(content(text)?)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk("SES SendEmail", e))?;
        Ok(out.message_id)
    }
}
