//! Two-factor sign-in (issue 34): set up with a code computed here (by `totp-rs`, not by the
//! gateway), asked after the password, each code and recovery code accepted once, wrong codes
//! throttled, secrets stored sealed, and a team that requires it sends users to set it up.

use reqwest::StatusCode;
use totp_rs::{Builder, Secret};

use crate::{
    hardening::{Session, form, no_redirects, post_login, sign_in},
    helpers::{Backend, TestApp, every_backend},
};
use paygate::{
    config::SecretKey,
    merchants::{test_merchant, two_factor::Sealer},
    store::two_factor as rows,
};

/// GET as a session: status, `Location`, body.
async fn get(t: &TestApp, cookie: &str, path: &str) -> (u16, String, String) {
    let res = no_redirects()
        .get(format!("http://{}{path}", t.dashboard))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    answer(res).await
}

/// POST a form as a session (with `csrf`): status, `Location`, body.
async fn post(
    t: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let res = no_redirects()
        .post(format!("http://{}{path}", t.dashboard))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap();
    answer(res).await
}

async fn answer(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
    let body = res.text().await.unwrap();
    // A new session's cookie rides in `location`'s place when one is set.
    match cookie {
        Some(c) if c.starts_with("paygate_session=") && !c.ends_with('=') => {
            (status, format!("{location} {c}"), body)
        }
        _ => (status, location, body),
    }
}

/// The text of the element with `data-test-id="ID"`.
fn text_of(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("data-test-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in {page}"));
    let start = at + page[at..].find('>').unwrap() + 1;
    page[start..start + page[start..].find('<').unwrap()].to_owned()
}

/// The code of `secret` (base32) at `offset` seconds from now.
fn code(secret: &str, offset: i64) -> String {
    let bytes = Secret::try_from_base32(secret).unwrap().as_bytes().to_vec();
    let totp = Builder::new().with_secret(bytes).build().unwrap();
    let at = chrono::Utc::now().timestamp() + offset;
    totp.generate(u64::try_from(at).unwrap()).to_string()
}

/// Sets up two-factor sign-in for a session; the secret (base32), the recovery codes and the
/// code that turned it on.
async fn set_up(t: &TestApp, s: &Session) -> (String, Vec<String>, String) {
    let (status, _, page) = get(t, &s.cookie, "/dashboard/account/2fa").await;
    assert_eq!(status, 200, "{page}");
    let secret = text_of(&page, "totp-secret");
    assert!(page.contains("data:image/svg+xml;base64,"), "a QR code");
    let used = code(&secret, 0);
    let (status, _, page) = post(
        t,
        &s.cookie,
        "/dashboard/account/2fa",
        &[("csrf", &s.csrf), ("code", &used)],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let codes: Vec<String> = page
        .match_indices("data-test-id=\"recovery-code\">")
        .map(|(at, m)| {
            let start = at + m.len();
            page[start..start + page[start..].find('<').unwrap()].to_owned()
        })
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    (secret, codes, used)
}

/// Signs in with the password; the waiting session's cookie (the code comes next).
async fn password_step(t: &TestApp, email: &str, password: &str) -> String {
    let res = post_login(t, email, password).await;
    let (status, location, _) = answer(res).await;
    assert_eq!(status, 303);
    let (to, cookie) = location.split_once(' ').expect("a session cookie");
    assert_eq!(to, "/login/code", "the code comes next");
    cookie.to_owned()
}

/// Gives the second factor: the signed-in cookie, or the status when refused.
async fn code_step(t: &TestApp, waiting: &str, code: &str) -> Result<String, u16> {
    let (_, _, page) = get(t, waiting, "/login/code").await;
    let csrf = crate::hardening::csrf_of(&page);
    let (status, location, _) = post(
        t,
        waiting,
        "/login/code",
        &[("csrf", &csrf), ("code", code)],
    )
    .await;
    match location.split_once(' ') {
        Some(("/dashboard", cookie)) if status == 303 => Ok(cookie.to_owned()),
        _ => Err(status),
    }
}

async fn a_second_factor_follows_the_password_and_each_code_works_once(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let owner = sign_in(&t).await;
    // A wrong code does not turn it on.
    let (_, _, page) = get(&t, &owner.cookie, "/dashboard/account/2fa").await;
    let (status, _, page2) = post(
        &t,
        &owner.cookie,
        "/dashboard/account/2fa",
        &[("csrf", &owner.csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page2.contains("not right"), "{page2}");
    assert_eq!(
        text_of(&page, "totp-secret"),
        text_of(&page2, "totp-secret")
    );
    let (secret, recovery, used) = set_up(&t, &owner).await;

    // Stored sealed: neither the text nor the bytes, and it opens only with the key.
    let (sealed, _) = rows::secrets(&t.app.store, test_merchant::ID)
        .await
        .unwrap();
    let sealed = sealed.expect("a sealed secret");
    let bytes = Secret::try_from_base32(&secret)
        .unwrap()
        .as_bytes()
        .to_vec();
    assert!(!sealed.contains(&secret));
    let opened = Sealer::new(&SecretKey::development()).open(&sealed, test_merchant::ID);
    assert_eq!(opened, Some(bytes));

    // The password alone opens nothing.
    let waiting = password_step(&t, "test@example.com", "password123").await;
    let (status, location, _) = get(&t, &waiting, "/dashboard").await;
    assert_eq!((status, location.as_str()), (303, "/login"));
    // The code that turned it on was used already; the next step's code is accepted.
    assert_eq!(code_step(&t, &waiting, &used).await, Err(401));
    let next = code(&secret, 30);
    let signed_in = code_step(&t, &waiting, &next).await.expect("signed in");
    let (status, _, _) = get(&t, &signed_in, "/dashboard").await;
    assert_eq!(status, 200);
    let (status, _, _) = get(&t, &waiting, "/login/code").await;
    assert_eq!(status, 303, "the waiting session is gone");

    // A recovery code works, however it is typed.
    let waiting = password_step(&t, "test@example.com", "password123").await;
    assert!(code_step(&t, &waiting, &recovery[0]).await.is_ok());
    let waiting = password_step(&t, "test@example.com", "password123").await;
    let typed = recovery[1].replace('-', " ").to_uppercase();
    assert!(code_step(&t, &waiting, &typed).await.is_ok());
    assert_eq!(
        rows::recovery_left(&t.app.store, test_merchant::ID)
            .await
            .unwrap(),
        8
    );
    // Neither a recovery code nor a code works twice.
    let waiting = password_step(&t, "test@example.com", "password123").await;
    assert_eq!(code_step(&t, &waiting, &recovery[0]).await, Err(401));
    assert_eq!(code_step(&t, &waiting, &next).await, Err(401), "replayed");
}

async fn wrong_codes_are_throttled_like_passwords(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let owner = sign_in(&t).await;
    let (secret, _, _) = set_up(&t, &owner).await;
    let waiting = password_step(&t, "test@example.com", "password123").await;
    for _ in 0..3 {
        assert_eq!(code_step(&t, &waiting, "000000").await, Err(401));
    }
    // Now even the right code waits.
    assert_eq!(code_step(&t, &waiting, &code(&secret, 30)).await, Err(429));
}

async fn a_team_that_requires_it_sends_users_to_set_it_up(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let owner = sign_in(&t).await;
    let (status, _, _) = post(
        &t,
        &owner.cookie,
        "/dashboard/team/two-factor",
        &[("csrf", &owner.csrf), ("required", "true")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(
        rows::required(&t.app.store, test_merchant::ID)
            .await
            .unwrap()
    );
    // Every page but the setup (and signing out) sends a user without it there.
    for path in ["/dashboard", "/dashboard/transactions", "/dashboard/team"] {
        let (status, location, _) = get(&t, &owner.cookie, path).await;
        assert_eq!(
            (status, location.as_str()),
            (303, "/dashboard/account/2fa"),
            "{path}"
        );
    }
    let (status, _, page) = get(&t, &owner.cookie, "/dashboard/account/2fa").await;
    assert_eq!(status, 200);
    assert!(page.contains("two-factor-required"), "{page}");
    let (secret, _, _) = set_up(&t, &owner).await;
    let (status, _, _) = get(&t, &owner.cookie, "/dashboard").await;
    assert_eq!(status, 200, "set up: the dashboard opens");
    // It cannot be turned off while required.
    let (status, _, _) = post(
        &t,
        &owner.cookie,
        "/dashboard/account/2fa/disable",
        &[("csrf", &owner.csrf), ("code", &code(&secret, 30))],
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, page) = get(&t, &owner.cookie, "/dashboard/account/2fa").await;
    assert!(page.contains("requires two-factor sign-in"), "{page}");
    assert!(
        rows::secrets(&t.app.store, test_merchant::ID)
            .await
            .unwrap()
            .0
            .is_some()
    );
    // Not required any more: a current code turns it off.
    post(
        &t,
        &owner.cookie,
        "/dashboard/team/two-factor",
        &[("csrf", &owner.csrf), ("required", "false")],
    )
    .await;
    post(
        &t,
        &owner.cookie,
        "/dashboard/account/2fa/disable",
        &[("csrf", &owner.csrf), ("code", &code(&secret, 30))],
    )
    .await;
    let (_, _, page) = get(&t, &owner.cookie, "/dashboard/account/2fa").await;
    assert!(page.contains("Two-factor sign-in is off"), "{page}");
    let (status, _, _) = get(&t, &owner.cookie, "/dashboard").await;
    assert_eq!(status, StatusCode::OK.as_u16());
}

every_backend!(
    a_second_factor_follows_the_password_and_each_code_works_once,
    wrong_codes_are_throttled_like_passwords,
    a_team_that_requires_it_sends_users_to_set_it_up,
);
