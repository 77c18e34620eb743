//! The webhook's first stage on arbitrary bodies: signed with the right secret (so parsing is
//! reached), or with arbitrary headers. It must never panic, and a body that proceeds must be
//! one of ours.
#![no_main]

use break_glass::handlers::webhook::{Screened, Settings, screen};
use break_glass::slack::signature::sign;
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-signing-secret-0123456789";

fuzz_target!(|data: &[u8]| {
    let settings = Settings {
        signing_secrets: vec![SECRET.into()],
        team_id: Some("T0TESTTEAM".into()),
        api_app_id: None,
        cloudtrail_delay: break_glass::domain::Duration::from_secs(900),
    };
    let now = 1_800_000_000i64;
    let ts = now.to_string();
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    headers.insert("x-slack-request-timestamp", ts.parse().unwrap());
    headers.insert("x-slack-signature", sign(SECRET.as_bytes(), &ts, data).parse().unwrap());
    if let Screened::Proceed(i) = screen(&settings, &http::Method::POST, &headers, data, now) {
        assert_eq!(i.team_and_app().0, "T0TESTTEAM", "another workspace got through");
    }
    // Unsigned: never proceeds.
    let mut unsigned = headers.clone();
    unsigned.insert("x-slack-signature", "v0=00".parse().unwrap());
    assert!(matches!(screen(&settings, &http::Method::POST, &unsigned, data, now), Screened::Done(_)));
    let _ = break_glass::slack::payload::parse_form(data);
});
