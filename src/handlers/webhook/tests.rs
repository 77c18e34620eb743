//! The webhook's first stage: signatures, sizes, content types, workspaces, the Events API
//! handshake.

use super::*;
use crate::slack::signature::sign;

const SECRET: &str = "test-signing-secret-0123456789";
const PS: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

fn settings() -> Settings {
    Settings {
        signing_secrets: vec![SECRET.into()],
        team_id: Some("T0TESTTEAM".into()),
        api_app_id: Some("A0TESTAPP1".into()),
        cloudtrail_delay: Duration::from_secs(900),
    }
}

fn click(user: &str, name: &str, team: &str) -> Vec<u8> {
    let payload = json!({
        "type": "interactive_message",
        "actions": [{"name": name, "type": "button", "value": PS}],
        "callback_id": "deployment_123456789012_abc",
        "team": {"id": team}, "user": {"id": user}, "channel": {"id": "C1"},
        "action_ts": "1.1", "message_ts": "1.0", "api_app_id": "A0TESTAPP1",
    });
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes()
}

fn signed(body: &[u8], ts: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "Content-Type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    h.insert("X-Slack-Request-Timestamp", ts.to_string().parse().unwrap());
    h.insert(
        "X-Slack-Signature",
        sign(SECRET.as_bytes(), &ts.to_string(), body)
            .parse()
            .unwrap(),
    );
    h
}

const NOW: i64 = 1_800_000_000;

fn run(headers: &HeaderMap, body: &[u8]) -> Screened {
    screen(&settings(), &Method::POST, headers, body, NOW)
}

fn status(s: Screened) -> StatusCode {
    match s {
        Screened::Done(r) => r.status,
        Screened::Proceed(_) => StatusCode::ACCEPTED,
    }
}

#[test]
fn a_signed_click_proceeds() {
    let body = click("U0ALICE0001", "break_glass", "T0TESTTEAM");
    let Screened::Proceed(i) = run(&signed(&body, NOW), &body) else {
        panic!("expected to proceed")
    };
    let Interaction::BreakGlass(c) = *i else {
        panic!()
    };
    assert_eq!(c.user_id, "U0ALICE0001");
    assert_eq!(request_id(&c), request_id(&c.clone()));
}

#[test]
fn events_share_the_front_door() {
    let event = |v: serde_json::Value| {
        let body = v.to_string().into_bytes();
        let mut h = signed(&body, NOW);
        h.insert("content-type", "application/json".parse().unwrap());
        (h, body)
    };
    let (h, body) = event(json!({"type": "url_verification", "challenge": "c0ffee"}));
    match screen(&settings(), &Method::POST, &h, &body, NOW) {
        Screened::Done(r) => {
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.body.as_deref(), Some(r#"{"challenge":"c0ffee"}"#));
        }
        other => panic!("{other:?}"),
    }
    let opened = |team: &str| {
        event(
            json!({"type": "event_callback", "team_id": team, "api_app_id": "A0TESTAPP1",
                     "event": {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"}}),
        )
    };
    let (h, body) = opened("T0TESTTEAM");
    match screen(&settings(), &Method::POST, &h, &body, NOW) {
        Screened::Proceed(i) => assert_eq!(i.kind(), "app_home_opened"),
        other => panic!("{other:?}"),
    }
    let (h, body) = opened("T0OTHER");
    match screen(&settings(), &Method::POST, &h, &body, NOW) {
        Screened::Done(r) => assert_eq!(r.status, StatusCode::FORBIDDEN),
        other => panic!("{other:?}"),
    }
    // Unsigned: refused before it is parsed, the handshake too.
    let (mut h, body) = event(json!({"type": "url_verification", "challenge": "c0ffee"}));
    h.remove("x-slack-signature");
    match screen(&settings(), &Method::POST, &h, &body, NOW) {
        Screened::Done(r) => assert_eq!((r.status, r.body), (StatusCode::UNAUTHORIZED, None)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusals() {
    let body = click("U0ALICE0001", "break_glass", "T0TESTTEAM");
    assert_eq!(
        status(run(&signed(&body, NOW - 301), &body)),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(run(&signed(&body, NOW + 301), &body)),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(run(&HeaderMap::new(), &body)),
        StatusCode::UNAUTHORIZED
    );
    let other = click("U0ALICE0001", "break_glass", "T0OTHER");
    assert_eq!(
        status(run(&signed(&body, NOW), &other)),
        StatusCode::UNAUTHORIZED,
        "tampered"
    );
    assert_eq!(
        status(run(&signed(&other, NOW), &other)),
        StatusCode::FORBIDDEN,
        "foreign team"
    );
    let big = vec![b'a'; MAX_BODY_BYTES + 1];
    assert_eq!(
        status(run(&signed(&big, NOW), &big)),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let junk = b"payload=%7B".to_vec();
    assert_eq!(
        status(run(&signed(&junk, NOW), &junk)),
        StatusCode::BAD_REQUEST
    );
    // A form under the Events API's content type is not an event.
    let mut json_ct = signed(&body, NOW);
    json_ct.insert("content-type", "application/json".parse().unwrap());
    assert_eq!(status(run(&json_ct, &body)), StatusCode::BAD_REQUEST);
    let mut text_ct = signed(&body, NOW);
    text_ct.insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(
        status(run(&text_ct, &body)),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let r = screen(&settings(), &Method::GET, &signed(&body, NOW), &body, NOW);
    assert_eq!(status(r), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn header_names_are_case_insensitive() {
    // http::HeaderMap normalises names; this pins that we rely on it for any casing.
    let body = click("U0ALICE0001", "break_glass", "T0TESTTEAM");
    let mut h = HeaderMap::new();
    let ts = NOW.to_string();
    h.insert(
        http::HeaderName::from_bytes(b"X-SLACK-REQUEST-TIMESTAMP").unwrap(),
        ts.parse().unwrap(),
    );
    h.insert(
        http::HeaderName::from_bytes(b"x-Slack-Signature").unwrap(),
        sign(SECRET.as_bytes(), &ts, &body).parse().unwrap(),
    );
    h.insert(
        "CONTENT-TYPE",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    assert!(matches!(run(&h, &body), Screened::Proceed(_)));
}
