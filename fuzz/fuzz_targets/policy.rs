//! The policy parser on arbitrary text: it must never panic, errors are one line, and a
//! policy that parses answers every question without panicking.
#![no_main]

use break_glass::domain::{AccountId, PermissionSetArn};
use break_glass::policy::{Policy, Subject, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Policy::parse(text) {
        Err(e) => assert!(!e.to_string().contains('\n'), "a multi-line error: {e}"),
        Ok(p) => {
            let groups = p.groups().into_iter().map(str::to_owned).collect();
            let account = AccountId::parse("123456789012").unwrap();
            let ps = PermissionSetArn::parse("arn:aws:sso:::permissionSet/ssoins-1/ps-1").unwrap();
            for user in p.users.keys().map(String::as_str).chain(["U0NOBODY"]) {
                let who = Subject { slack_user: user, sso_groups: &groups };
                let _ = p.decide(&who, &Target { account: &account, permission_set: &ps, permission_set_name: Some("Admin") });
                let _ = p.options(&who);
            }
        }
    }
});
