//! Teams (issue 34): every role against every signed-in dashboard route, invitations (single
//! use, expiring, stored as digests), the last owner, sessions that end when a user is removed
//! or changes their password, and the upgrade that makes each merchant's sign-in its owner.

use reqwest::StatusCode;

use crate::{
    hardening::{Session, form, no_redirects, sign_in_as},
    helpers::{Backend, TestApp, TestDb, every_backend},
};
use paygate::{
    app::Mode,
    merchants::{self, team::Role},
    pages::dashboard::ROUTES,
    store::{Store, now, users},
};

/// GETs a dashboard page with a session cookie, not following redirects.
pub(crate) async fn page(t: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let res = no_redirects()
        .get(format!("http://{}{path}", t.dashboard))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// A signed-in user: session cookie and CSRF token.
pub(crate) type User = Session;

pub(crate) async fn sign_in(t: &TestApp, email: &str, password: &str) -> Option<User> {
    sign_in_as(t, email, password).await
}

/// The test merchant's owner.
pub(crate) async fn owner(t: &TestApp) -> User {
    sign_in(t, "test@example.com", "password123")
        .await
        .expect("the owner signs in")
}

/// POSTs a dashboard form as `u` (its CSRF token added): status, `Location`, body.
pub(crate) async fn post(
    t: &TestApp,
    u: &User,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let mut pairs = vec![("csrf", u.csrf.as_str())];
    pairs.extend_from_slice(fields);
    let res = no_redirects()
        .post(format!("http://{}{path}", t.dashboard))
        .header("cookie", &u.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&pairs))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, res.text().await.unwrap())
}

/// The value of the first element carrying `data-test-id="ID"` and a `value` attribute.
fn value_of(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("data-test-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in {page}"));
    let tag_start = page[..at].rfind('<').unwrap();
    let tag = &page[tag_start..at + page[at..].find('>').unwrap()];
    let v = tag.find("value=\"").expect("a value") + 7;
    tag[v..v + tag[v..].find('"').unwrap()].to_owned()
}

/// Invites `email` as `role`: the page that answers (200).
async fn invite_page(t: &TestApp, by: &User, email: &str, role: &str) -> String {
    let (status, _, body) = post(
        t,
        by,
        "/dashboard/team/invite",
        &[("email", email), ("role", role)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Invites `email` as `role`: the invitation's path (`/invitations/TOKEN`).
async fn invite(t: &TestApp, by: &User, email: &str, role: &str) -> String {
    let body = invite_page(t, by, email, role).await;
    let link = value_of(&body, "invitation-link");
    let at = link.find("/invitations/").expect("an invitation link");
    link[at..].to_owned()
}

/// Accepts an invitation: status and body.
async fn accept(t: &TestApp, path: &str, name: &str, password: &str) -> (u16, String) {
    let res = no_redirects()
        .post(format!("http://{}{path}", t.dashboard))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("name", name),
            ("password", password),
            ("confirm", password),
        ]))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Invites, accepts and signs in a user with `role`.
pub(crate) async fn member(t: &TestApp, owner: &User, role: &str) -> User {
    let email = format!("{role}@shop.example");
    let path = invite(t, owner, &email, role).await;
    let (status, body) = accept(t, &path, &format!("A {role}"), "correct horse").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("invitation-accepted"), "{body}");
    sign_in(t, &email, "correct horse")
        .await
        .expect("the new user signs in")
}

const FORBIDDEN: &str = "data-test-id=\"forbidden\"";

async fn every_role_reaches_exactly_the_routes_its_permissions_allow(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let owner = owner(&t).await;
    let mut people = vec![(Role::Owner, owner)];
    for role in [Role::Admin, Role::Developer, Role::Support, Role::Viewer] {
        let owner = &people[0].1;
        let u = member(&t, owner, role.as_str()).await;
        people.push((role, u));
    }
    // Signing out last: it ends the session the walk uses.
    let mut routes: Vec<_> = ROUTES.iter().collect();
    routes.sort_by_key(|(_, path, _)| *path == "/logout");
    let mut checked = 0;
    for (role, u) in &people {
        for (method, route, permission) in &routes {
            let path = route.replace("{id}", "x");
            let (status, location, body) = if *method == "GET" {
                let (s, b) = page(&t, &u.cookie, &path).await;
                (s.as_u16(), String::new(), b)
            } else {
                post(&t, u, &path, &[]).await
            };
            let allowed = role.can(*permission);
            assert_ne!(status, 500, "{role:?} {method} {route}: {body}");
            assert!(
                !(status == 303 && location == "/login" && *route != "/logout"),
                "{role:?} {method} {route}: signed out"
            );
            if allowed {
                assert!(
                    !body.contains(FORBIDDEN),
                    "{role:?} may {method} {route}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{role:?} may not {method} {route}");
                assert!(
                    body.contains(FORBIDDEN),
                    "{role:?} {method} {route}: {body}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * ROUTES.len());
    // The team page is the owner's alone, and its link shows only to owners.
    let (_, viewer) = &people[4];
    let (_, overview) = page(&t, &viewer.cookie, "/dashboard").await;
    assert!(!overview.contains("href=\"/dashboard/team\""));
    assert!(!overview.contains("rotate-secret-button"));
}

async fn invitations_work_once_until_they_expire_and_are_stored_as_digests(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let owner = owner(&t).await;
    let path = invite(&t, &owner, "dev@shop.example", "developer").await;
    let token = path.trim_start_matches("/invitations/");
    let store = &t.app.store;
    let open = users::open_invitations(store, paygate::merchants::test_merchant::ID, now())
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].id,
        merchants::secret_digest(token),
        "kept as a digest"
    );
    assert!(!open[0].id.contains(token));
    // The owner's page lists it, without its link.
    let (_, team) = page(&t, &owner.cookie, "/dashboard/team").await;
    assert!(team.contains("dev@shop.example") && !team.contains(token));

    // A bad form keeps the invitation open.
    let (status, body) = accept(&t, &path, "Dev", "short").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at least 8 characters"), "{body}");
    let (status, body) = accept(&t, &path, "Dev", "correct horse").await;
    assert_eq!(status, 200, "{body}");
    // Once only.
    let (status, body) = accept(&t, &path, "Someone else", "another password").await;
    assert_eq!(status, 410, "{body}");
    let res = no_redirects()
        .get(format!("http://{}{path}", t.dashboard))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let dev = users::by_email(store, "DEV@shop.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((dev.role.as_str(), dev.name.as_str()), ("developer", "Dev"));

    // Nor can a new merchant take a team member's email.
    let taken = merchants::create(store, "Other shop", "dev@shop.example")
        .await
        .err();
    assert!(
        matches!(taken, Some(merchants::CreateError::EmailTaken)),
        "{taken:?}"
    );

    // An email that signs in already cannot be invited again.
    let (status, _, body) = post(
        &t,
        &owner,
        "/dashboard/team/invite",
        &[("email", "dev@shop.example"), ("role", "viewer")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("already signs in"), "{body}");

    // Expired: 72 hours after it was made (stored with its expiry).
    let expired = users::Invitation {
        id: merchants::secret_digest("an-expired-token"),
        merchant_id: paygate::merchants::test_merchant::ID.into(),
        email: "late@shop.example".into(),
        role: "viewer".into(),
        invited_by: paygate::merchants::test_merchant::ID.into(),
        created_at: now() - chrono::Duration::hours(73),
        expires_at: now() - chrono::Duration::hours(1),
    };
    users::invite(store, &expired, None).await.unwrap();
    let (status, _) = accept(&t, "/invitations/an-expired-token", "Late", "correct horse").await;
    assert_eq!(status, 410);
    assert!(
        users::by_email(store, "late@shop.example")
            .await
            .unwrap()
            .is_none()
    );

    // Revoked.
    let path = invite(&t, &owner, "support@shop.example", "support").await;
    let (_, team) = page(&t, &owner.cookie, "/dashboard/team").await;
    let form_at = team.find("/dashboard/team/invitations/").unwrap();
    let revoke = &team[form_at..form_at + team[form_at..].find('"').unwrap()];
    let (status, location, _) = post(&t, &owner, revoke, &[]).await;
    assert_eq!((status, location.as_str()), (303, "/dashboard/team"));
    let (status, _) = accept(&t, &path, "Support", "correct horse").await;
    assert_eq!(status, 410);
}

async fn the_last_owner_stays_and_changes_end_sessions_at_once(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let owner = owner(&t).await;
    let me = paygate::merchants::test_merchant::ID;
    let store = &t.app.store;
    // The only owner can be neither demoted nor removed (by anyone).
    let (status, _, _) = post(
        &t,
        &owner,
        &format!("/dashboard/team/{me}/role"),
        &[("role", "admin")],
    )
    .await;
    assert_eq!(status, 303);
    let (_, team) = page(&t, &owner.cookie, "/dashboard/team").await;
    assert!(team.contains("keeps at least one owner"), "{team}");
    assert_eq!(users::get(store, me).await.unwrap().unwrap().role, "owner");
    assert_eq!(
        users::remove(store, me, me, None).await.unwrap(),
        users::TeamChange::LastOwner
    );

    // A second owner: then the first may step down.
    let second = member(&t, &owner, "owner").await;
    let (status, _, _) = post(
        &t,
        &second,
        &format!("/dashboard/team/{me}/role"),
        &[("role", "admin")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(users::get(store, me).await.unwrap().unwrap().role, "admin");
    // The demoted owner's very next request is an admin's: the team page is refused.
    let (status, _) = page(&t, &owner.cookie, "/dashboard/team").await;
    assert_eq!(status, 403);

    // Removing a user ends their sessions at once.
    let viewer = member(&t, &second, "viewer").await;
    let (status, _) = page(&t, &viewer.cookie, "/dashboard").await;
    assert_eq!(status, 200);
    let id = users::by_email(store, "viewer@shop.example")
        .await
        .unwrap()
        .unwrap()
        .id;
    let (status, _, _) = post(&t, &second, &format!("/dashboard/team/{id}/remove"), &[]).await;
    assert_eq!(status, 303);
    let (status, _) = page(&t, &viewer.cookie, "/dashboard").await;
    assert_eq!(status, 303, "the removed user's session ended");
    assert!(
        sign_in(&t, "viewer@shop.example", "correct horse")
            .await
            .is_none()
    );

    // Changing a password ends the user's other sessions, not the one that changed it.
    let dev = member(&t, &second, "developer").await;
    let elsewhere = sign_in(&t, "developer@shop.example", "correct horse")
        .await
        .unwrap();
    let (_, account) = page(&t, &dev.cookie, "/dashboard/account").await;
    assert_eq!(account.matches("data-test-id=\"session-row\"").count(), 2);
    let (status, _, _) = post(
        &t,
        &dev,
        "/dashboard/account/password",
        &[
            ("current", "wrong password"),
            ("password", "battery staple"),
            ("confirm", "battery staple"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, account) = page(&t, &dev.cookie, "/dashboard/account").await;
    assert!(
        account.contains("current password is not right"),
        "{account}"
    );
    let (status, _, _) = post(
        &t,
        &dev,
        "/dashboard/account/password",
        &[
            ("current", "correct horse"),
            ("password", "battery staple"),
            ("confirm", "battery staple"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _) = page(&t, &elsewhere.cookie, "/dashboard").await;
    assert_eq!(status, 303, "the other session ended");
    let (status, account) = page(&t, &dev.cookie, "/dashboard/account").await;
    assert_eq!(status, 200);
    assert_eq!(account.matches("data-test-id=\"session-row\"").count(), 1);
    assert!(
        sign_in(&t, "developer@shop.example", "correct horse")
            .await
            .is_none()
    );
    let again = sign_in(&t, "developer@shop.example", "battery staple")
        .await
        .unwrap();
    // A user ends one of their sessions from the account page.
    let (_, account) = page(&t, &again.cookie, "/dashboard/account").await;
    let other = account
        .match_indices("/dashboard/account/sessions/")
        .map(|(at, _)| &account[at..at + account[at..].find('"').unwrap()])
        .find(|_| true)
        .unwrap()
        .to_owned();
    let (status, _, _) = post(&t, &again, &other, &[]).await;
    assert_eq!(status, 303);
    let mut ended = 0;
    for cookie in [&dev.cookie, &again.cookie] {
        if page(&t, cookie, "/dashboard").await.0 == StatusCode::SEE_OTHER {
            ended += 1;
        }
    }
    assert_eq!(ended, 1, "exactly that session ended");
}

/// Runs `sql` on the test database with text and time arguments (`$1…` in that order).
async fn exec(db: &TestDb, sql: &str, texts: &[&str], times: &[chrono::DateTime<chrono::Utc>]) {
    use sqlx::Connection as _;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if db.url().starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url()).await.unwrap();
        let mut q = sqlx::query(sql);
        for t in texts {
            q = q.bind(*t);
        }
        for t in times {
            q = q.bind(*t);
        }
        q.execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url()).await.unwrap();
        let mut q = sqlx::query(sql);
        for t in texts {
            q = q.bind(*t);
        }
        for t in times {
            q = q.bind(*t);
        }
        q.execute(&mut c).await.unwrap();
    }
}

/// A database of the schema before teams (migration 16): a merchant with a dashboard password
/// and a live session.
async fn the_upgrade_makes_each_merchants_sign_in_its_owner(backend: Backend) {
    let db = TestDb::create(backend).await;
    let store = Store::connect(&db.url(), 2).await.unwrap();
    store.migrate_until(16).await.unwrap();
    let hash = merchants::hash_password("old password").unwrap();
    let at = now();
    let id = "0b6d2c1e-6a43-4a3f-9f0e-3c1d2b4a5e6f";
    let insert = "INSERT INTO merchants (id, name, email, api_key, api_secret_hash, \
                  webhook_secret, password_hash, created_at, updated_at) \
                  VALUES ($1, 'Old Shop', 'old@shop.example', 'key_old', 'x', 'whsec_x', $2, $3, $3)";
    let session = "INSERT INTO sessions (id, merchant_id, csrf_token, created_at, expires_at) \
                   VALUES ('digest', $1, 'csrf', $2, $3)";
    let later = at + chrono::Duration::hours(1);
    exec(&db, insert, &[id, &hash], &[at]).await;
    exec(&db, session, &[id], &[at, later]).await;
    store.migrate().await.unwrap();
    let owner = users::get(&store, id).await.unwrap().expect("an owner");
    assert_eq!(
        (
            owner.role.as_str(),
            owner.email.as_str(),
            owner.name.as_str()
        ),
        ("owner", "old@shop.example", "Old Shop")
    );
    assert_eq!(
        merchants::check_login(&store, "old@shop.example", "old password")
            .await
            .unwrap()
            .as_deref(),
        Some(id)
    );
    let session = paygate::store::dashboard::session(&store, "digest", at)
        .await
        .unwrap()
        .expect("the session lives on");
    assert_eq!(
        (session.user_id.as_str(), session.role.as_str()),
        (id, "owner")
    );
    store.close().await;
}

/// A local SMTP server that accepts every message and keeps it: the tests' mail sink.
struct SmtpSink {
    port: u16,
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SmtpSink {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::session(stream, kept.clone()));
            }
        });
        Self { port, messages }
    }

    /// One SMTP conversation: every command is accepted, each message's text kept.
    async fn session(
        stream: tokio::net::TcpStream,
        messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let (read, mut write) = stream.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        let _ = write.write_all(b"220 sink ESMTP\r\n").await;
        let mut data: Option<String> = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(text) = data.as_mut() {
                if line == "." {
                    messages.lock().unwrap().push(std::mem::take(text));
                    data = None;
                    let _ = write.write_all(b"250 queued\r\n").await;
                } else {
                    text.push_str(&line);
                    text.push('\n');
                }
                continue;
            }
            let reply: &[u8] = match line.to_ascii_uppercase().get(..4) {
                Some("DATA") => {
                    data = Some(String::new());
                    b"354 go on\r\n"
                }
                Some("QUIT") => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 sink\r\n",
            };
            let _ = write.write_all(reply).await;
        }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

async fn invitations_are_mailed_when_smtp_is_configured(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let t = TestApp::spawn_with(backend, Mode::All, &["--smtp-url", &url]).await;
    let owner = owner(&t).await;
    let body = invite_page(&t, &owner, "dev@shop.example", "developer").await;
    assert!(body.contains("invitation-mailed"), "{body}");
    let link = value_of(&body, "invitation-link");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // Quoted-printable may fold long lines ("=" at a line's end).
    let text = messages[0].replace("=\n", "");
    assert!(text.contains("To: dev@shop.example"), "{text}");
    assert!(
        text.contains("Subject: Join Test Merchant on paygate"),
        "{text}"
    );
    assert!(text.contains(&link), "the link: {text}");
    assert!(text.contains("as Developer"), "{text}");
    // The mailed link works.
    let path = &link[link.find("/invitations/").unwrap()..];
    let (status, _) = accept(&t, path, "Dev", "correct horse").await;
    assert_eq!(status, 200);
}

async fn an_invitation_that_cannot_be_mailed_still_shows_its_link(backend: Backend) {
    let closed = crate::process::free_port();
    let url = format!("smtp://127.0.0.1:{closed}");
    let t = TestApp::spawn_with(backend, Mode::All, &["--smtp-url", &url]).await;
    let owner = owner(&t).await;
    let body = invite_page(&t, &owner, "dev@shop.example", "developer").await;
    assert!(body.contains("invitation-not-mailed"), "{body}");
    assert!(value_of(&body, "invitation-link").contains("/invitations/"));
}

async fn invitation_tokens_never_reach_the_logs(backend: Backend) {
    use crate::hardening::{csrf_of, first_cookie, login_form};
    let db = TestDb::create(backend).await;
    let dir = crate::process::temp_dir();
    // JSON logs: the access line of every request, with its span's fields.
    let env = [("LOG_FORMAT", "json"), ("RUST_LOG", "info")];
    let mut g = crate::process::Gateway::start(&db, &dir, &env).await;
    let dashboard = format!("127.0.0.1:{}", g.listening("dashboard").await);
    let client = no_redirects();
    let (form_cookie, token) = login_form(&client, &dashboard).await;
    let signed_in = client
        .post(format!("http://{dashboard}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", form_cookie)
        .body(form(&[
            ("csrf", token.as_str()),
            ("email", "test@example.com"),
            ("password", "password123"),
        ]))
        .send()
        .await
        .unwrap();
    let cookie = first_cookie(&signed_in);
    let get = |path: String| {
        client
            .get(format!("http://{dashboard}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    let csrf = csrf_of(
        &get("/dashboard".into())
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let page = client
        .post(format!("http://{dashboard}/dashboard/team/invite"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", csrf.as_str()),
            ("email", "dev@shop.example"),
            ("role", "developer"),
        ]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = value_of(&page, "invitation-link");
    let token = &link[link.find("/invitations/").unwrap() + "/invitations/".len()..];
    let path = format!("/invitations/{token}");
    assert_eq!(get(path.clone()).await.unwrap().status(), 200);
    let accepted = client
        .post(format!("http://{dashboard}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("name", "Dev"),
            ("password", "correct horse"),
            ("confirm", "correct horse"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let logs = g.logs();
    assert!(
        logs.contains("/invitations/{token}"),
        "the requests were logged by their route:\n{logs}"
    );
    assert!(!logs.contains(token), "the token reached the log:\n{logs}");
    drop(g);
    let _ = std::fs::remove_dir_all(dir);
}

every_backend!(
    every_role_reaches_exactly_the_routes_its_permissions_allow,
    invitations_work_once_until_they_expire_and_are_stored_as_digests,
    the_last_owner_stays_and_changes_end_sessions_at_once,
    the_upgrade_makes_each_merchants_sign_in_its_owner,
    invitations_are_mailed_when_smtp_is_configured,
    an_invitation_that_cannot_be_mailed_still_shows_its_link,
    invitation_tokens_never_reach_the_logs,
);
