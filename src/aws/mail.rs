//! SES: the report e-mail, HTML with a plain-text twin; with attachments (the report's JSON,
//! the full timeline as CSV) as a raw e-mail
//! when the timeline had to be capped.

use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::{Body, Content, Destination, Message, RawMessage};
use base64::Engine;

use crate::error::{Error, from_sdk};

/// SES refuses messages over 10 MB; stay clear of it (base64 grows content by a third).
pub const MAX_ATTACHMENT_BYTES: usize = 6 * 1024 * 1024;

#[derive(Clone)]
pub struct Mailer {
    client: aws_sdk_ses::Client,
    sender: String,
}

/// One message: subject, HTML and text, and any attachments.
pub struct Mail<'a> {
    pub to: &'a [String],
    pub subject: &'a str,
    pub html: &'a str,
    pub text: &'a str,
    pub attachments: &'a [Attachment<'a>],
}

/// A file attached to a message (text: CSV, JSON).
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub content: &'a str,
}

impl Mailer {
    pub fn new(client: aws_sdk_ses::Client, sender: impl Into<String>) -> Self {
        Self {
            client,
            sender: sender.into(),
        }
    }

    /// Sends the message; returns the SES message id. Every address is checked first (it goes
    /// into a header).
    pub async fn send(&self, mail: &Mail<'_>) -> Result<String, Error> {
        for a in mail.to.iter().chain(std::iter::once(&self.sender)) {
            valid_address(a)?;
        }
        if !mail.attachments.is_empty() {
            let raw = mime(&self.sender, mail);
            let out = self
                .client
                .send_raw_email()
                .source(&self.sender)
                .set_destinations(Some(mail.to.to_vec()))
                .raw_message(
                    RawMessage::builder()
                        .data(Blob::new(raw))
                        .build()
                        .map_err(|e| Error::InvalidInput(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| from_sdk("SES SendRawEmail", e))?;
            return Ok(out.message_id);
        }
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
                    .set_to_addresses(Some(mail.to.to_vec()))
                    .build(),
            )
            .message(
                Message::builder()
                    .subject(content(mail.subject)?)
                    .body(
                        Body::builder()
                            .html(content(mail.html)?)
                            .text(content(mail.text)?)
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

/// Whether `a` may go into a mail header: a plain e-mail address
/// ([`crate::domain::EmailAddress`]).
pub fn valid_address(a: &str) -> Result<(), Error> {
    crate::domain::EmailAddress::parse(a)
        .map(drop)
        .map_err(|e| Error::InvalidInput(e.to_string()))
}

/// `multipart/mixed` of a `multipart/alternative` (text, HTML) and the attachments, every
/// part base64. An attachment over [`MAX_ATTACHMENT_BYTES`] is cut at a line, with a note.
pub fn mime(sender: &str, mail: &Mail<'_>) -> Vec<u8> {
    let b64 = |s: &[u8]| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(s);
        let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / 76 * 2);
        for chunk in encoded.as_bytes().chunks(76) {
            wrapped.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            wrapped.push_str("\r\n");
        }
        wrapped
    };
    let mixed = "bg-mixed-7d3f0c2a";
    let alt = "bg-alt-91e4b6d8";
    let mut m = String::new();
    m += &format!("From: {sender}\r\n");
    m += &format!("To: {}\r\n", mail.to.join(", "));
    m += &format!(
        "Subject: =?UTF-8?B?{}?=\r\n",
        base64::engine::general_purpose::STANDARD.encode(mail.subject)
    );
    m += "MIME-Version: 1.0\r\n";
    m += &format!("Content-Type: multipart/mixed; boundary=\"{mixed}\"\r\n\r\n");
    m += &format!("--{mixed}\r\nContent-Type: multipart/alternative; boundary=\"{alt}\"\r\n\r\n");
    for (kind, body) in [("plain", mail.text), ("html", mail.html)] {
        m += &format!(
            "--{alt}\r\nContent-Type: text/{kind}; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64(body.as_bytes())
        );
    }
    m += &format!("--{alt}--\r\n");
    for a in mail.attachments {
        let content = if a.content.len() > MAX_ATTACHMENT_BYTES {
            let mut cut = MAX_ATTACHMENT_BYTES;
            while !a.content.is_char_boundary(cut) {
                cut -= 1;
            }
            let cut = a.content[..cut].rfind('\n').map_or(cut, |i| i + 1);
            format!(
                "{}\"… cut: the full content exceeds the mail size limit\"\r\n",
                &a.content[..cut]
            )
        } else {
            a.content.to_owned()
        };
        let filename: String = a
            .filename
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let content_type: String = a
            .content_type
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '+'))
            .collect();
        m += &format!(
            "--{mixed}\r\nContent-Type: {content_type}; charset=UTF-8; name=\"{filename}\"\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64(content.as_bytes())
        );
    }
    m += &format!("--{mixed}--\r\n");
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_message_carries_both_bodies_and_the_csv() {
        let to = vec!["sec@example.com".to_owned()];
        let mail = Mail {
            to: &to,
            subject: "Break-glass report — 3 events",
            html: "<p>html</p>",
            text: "text",
            attachments: &[
                Attachment {
                    filename: "timeline bg-1.csv",
                    content_type: "text/csv",
                    content: "a,b\r\n",
                },
                Attachment {
                    filename: "bg-1.json",
                    content_type: "application/json",
                    content: "{}",
                },
            ],
        };
        let raw = String::from_utf8(mime("bg@example.com", &mail)).unwrap();
        assert!(raw.contains("Subject: =?UTF-8?B?"));
        assert!(raw.contains("Content-Disposition: attachment; filename=\"timelinebg-1.csv\""));
        let decoded: Vec<String> = raw
            .split("\r\n\r\n")
            .filter_map(|part| {
                let body: String = part.lines().take_while(|l| !l.starts_with("--")).collect();
                base64::engine::general_purpose::STANDARD.decode(body).ok()
            })
            .map(|b| String::from_utf8(b).unwrap())
            .collect();
        assert!(
            decoded.contains(&"text".to_owned())
                && decoded.contains(&"<p>html</p>".to_owned())
                && decoded.contains(&"a,b\r\n".to_owned())
                && decoded.contains(&"{}".to_owned()),
            "{decoded:?}"
        );
        assert!(raw.contains("Content-Type: application/json; charset=UTF-8; name=\"bg-1.json\""));
        assert!(raw.lines().all(|l| l.len() <= 998), "RFC 5322 line length");
    }
}
