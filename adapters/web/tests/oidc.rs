//! OpenID Connect sign-in against a local issuer the test starts: discovery, JWKS and a token
//! endpoint that signs ID tokens (RS256) with a test key. A verified e-mail that names a Krake
//! user signs in; an unknown one is refused; a replayed state and a wrong nonce are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use axum::extract::{Form, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{As, spawn_with};
use krake_core::actor::{Role, UserName};
use krake_core::ports::UserRepo;
use krake_core::secret::Secret;
use krake_web::front::WebConfig;
use krake_web::oidc::OidcConfig;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A throwaway RSA key made for this test only (PKCS#1).
const TEST_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\n\
MIIEogIBAAKCAQEAlQI0QFeQ2UfDdsl8vZsL+pahJLYSO0/p8Szeg8GxFrx4aRx0\n\
m3/dOofHhyX4ARpLsa8MK82nrexr9Ak2QvPp2d250JuWzKezGpPJQ4IEmX8ytVRF\n\
elpMFeH3WnHYHPyn97bcoahnBd/CaGQY5cBNRZRsvxrxSQDDvCFDGADLCEGwekDT\n\
o6UnF/+e+0USLei4PYqhBfIeMswu8CA00MKCkTrRiCzg4RXWHUNwWndgqFAAv1Pt\n\
bwEA9Oj91b/9DXL+HH7f3CDx39/85/m1+RanqgjPX4LSItuGXuh7J/GHubD3hoq+\n\
AQQ/3bm3GWEio8vDeg+G/jM3pQ46A2hUu1NoMwIDAQABAoIBAAIb22BzvM2OafJC\n\
7LyENrmvqw0pdH2ZZm6u22FS+u4e8bdPG0leGGPtKwI7I9TkKeEUYKA4E2DvQSHd\n\
hYKSECOwsyIEKbCwyOSd5dHKQ8VmWvHdBPSz1XLT1VvW05+pZbkoQdwZ1YdsQMSY\n\
cg/CVnWfIaDcwUBuvdZqRBhRXo451jtjpd821FjWYe4XQ0fqhOiS5EFvhyeYshND\n\
3WzAh8vtiHPb+KhE8vGpGsdce7we6XAVNsmh56NXZ5T0J9Ffci8TIdMzOiRo1sPo\n\
LvRZOXU1NKb4rQ7E+AVXuLJOAMl4sDQYa8RIk9Thwg2xubTe+Z2hzqd7RXKFL8VK\n\
PerYA8UCgYEAzxNyKvtQ2zBZqMamzwLkS/u1ntUePR0LWpjnTzfWpIuNSdg+FrRi\n\
NjZT2HTlEBOaKQ9KsMPp50PNFaNN58P6sr+pQGj40LcOISSm9Q5B4tIqRdZz87yz\n\
a0ygSRvGCfPnj1qPEeBmFvVALOTskyoBWjQGA5hLpMJCR165FtM6wNUCgYEAuDat\n\
MH4umqjuM+a63Wifc4u4Wbvb285yHnXgPrdu0ipL2u8pBgCmCozOEyUeo8T4wkxa\n\
sic98Xbb5Mk4UmphXq16+yG4HNf0LG2i1b9PXwOSZZrofsbAzC8yPeilvR/F6JOX\n\
PhSngyzDQKlE1oWb6DV/bcod96/5RXP3FdyFyOcCgYBum5Z5+u9/hN3/Vsy2+nZz\n\
V6n1gyS5xA/SfqXfHJZcIeaAMS9I9WUYTACROC86XR4VHIPq01rXGtIq4qW0TGxW\n\
miWPsAJnib/UWD2N2+W5gETwNNKOuJalk7JyGpG3sz5WxipxhAlD7hAvasArA17h\n\
jbRAq1KMWO8KLEB1PrK9WQKBgEaYza6z7PBgpUlGt356xgDmHvRkxlFqwNljm1jt\n\
u47XntJ8rWAbh4arh55Wr3Nb3Wm5EVkNKPQM9SCs7OTI2CAMpADyXzjOmkkcizcX\n\
ZjenisddopRTXzfhLoQDUOE1+Aa16VRlXf0rfnidZkBAXAuV1QwiVXHDAujXFG5Q\n\
YQUpAoGAFmEkFSXK4WPnTCKl99D10cgCcL/MX0fAGkQvTrg4A4VCJJ1sr+Mq/TLg\n\
XoRDYR2VK+TzBH+SOI67jQGQRRkpu7Xh+kV2roQYDY2j8eamTaHOsPEKtPw8YBCc\n\
CPgVBlmkBqeLXr0dXYe/d45RV8MGG+akny+b76zcViFcdvwDUIc=\n\
-----END RSA PRIVATE KEY-----";

#[derive(Clone)]
struct Issuer {
    url: String,
    nonces: Arc<Mutex<HashMap<String, String>>>,
    email: Arc<Mutex<String>>,
    force_nonce: Arc<Mutex<Option<String>>>,
}

fn key() -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(TEST_KEY, Some(JsonWebKeyId::new("test".into()))).unwrap()
}

async fn discovery(State(i): State<Issuer>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "issuer": i.url,
        "authorization_endpoint": format!("{}/authorize", i.url),
        "token_endpoint": format!("{}/token", i.url),
        "jwks_uri": format!("{}/jwks", i.url),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "keys": [key().as_verification_key()] }))
}

async fn token(
    State(i): State<Issuer>,
    Form(f): Form<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    assert_eq!(
        f.get("grant_type").map(String::as_str),
        Some("authorization_code")
    );
    assert!(f.contains_key("code_verifier"), "PKCE verifier sent");
    let code = f.get("code").cloned().unwrap_or_default();
    let nonce = i
        .force_nonce
        .lock()
        .unwrap()
        .clone()
        .or_else(|| i.nonces.lock().unwrap().get(&code).cloned())
        .unwrap_or_default();
    let now = chrono::Utc::now();
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(i.url.clone()).unwrap(),
        vec![Audience::new("krake-client".into())],
        now + chrono::Duration::minutes(5),
        now,
        StandardClaims::new(SubjectIdentifier::new("sub-42".into()))
            .set_email(Some(EndUserEmail::new(i.email.lock().unwrap().clone())))
            .set_email_verified(Some(true)),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)));
    let id = CoreIdToken::new(
        claims,
        &key(),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .unwrap();
    Json(serde_json::json!({
        "access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
        "id_token": serde_json::to_value(&id).unwrap(),
    }))
}

async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let i = Issuer {
        url,
        nonces: Default::default(),
        email: Arc::new(Mutex::new("ana@example.com".into())),
        force_nonce: Default::default(),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(i.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    i
}

/// Starts a sign-in: returns the state, after telling the issuer which nonce the code carries.
async fn begin(app: &common::App, i: &Issuer, code: &str) -> String {
    let (s, h, _) = app.send(Method::GET, "/login/oidc", As::Nobody, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let loc = openidconnect::url::Url::parse(h["location"].to_str().unwrap()).unwrap();
    assert!(
        loc.as_str().starts_with(&format!("{}/authorize?", i.url)),
        "{loc}"
    );
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "krake-client");
    assert_eq!(q["redirect_uri"], "http://krake.test/login/oidc/callback");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].contains("openid") && q["scope"].contains("email"));
    i.nonces
        .lock()
        .unwrap()
        .insert(code.into(), q["nonce"].clone());
    q["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_local_openid_connect_issuer() {
    let i = issuer().await;
    let app = spawn_with(WebConfig {
        oidc: Some(OidcConfig {
            issuer: i.url.clone(),
            client_id: "krake-client".into(),
            client_secret: Secret::new("s3cret"),
            base_url: "http://krake.test".into(),
        }),
        ..WebConfig::default()
    })
    .await;
    let now = krake_core::time::Clock::now(app.clock.as_ref());
    app.store
        .upsert_user(
            &UserName::parse("ana@example.com").unwrap(),
            Role::Member,
            None,
            now,
        )
        .await
        .unwrap();
    // The sign-in page offers it.
    let (_, _, page) = app.send(Method::GET, "/login", As::Nobody, None).await;
    assert!(page.contains("/login/oidc"));

    let state = begin(&app, &i, "code-1").await;
    let cb = format!("/login/oidc/callback?code=code-1&state={state}");
    let (s, h, body) = app.send(Method::GET, &cb, As::Nobody, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly"));
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("krake_session=")
        .unwrap();
    let (s, me) = app.get("/api/v1/me", As::Cookie(id, None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user"], "ana@example.com");

    // The same state cannot be used twice.
    let (s, _, _) = app.send(Method::GET, &cb, As::Nobody, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A verified e-mail without a Krake account gets none.
    *i.email.lock().unwrap() = "eve@example.com".into();
    let state = begin(&app, &i, "code-2").await;
    let (s, _, body) = app
        .send(
            Method::GET,
            &format!("/login/oidc/callback?code=code-2&state={state}"),
            As::Nobody,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body.contains("krake user add eve@example.com"), "{body}");

    // An ID token for another sign-in (wrong nonce) is refused.
    *i.email.lock().unwrap() = "ana@example.com".into();
    *i.force_nonce.lock().unwrap() = Some("someone-else".into());
    let state = begin(&app, &i, "code-3").await;
    let (s, h, _) = app
        .send(
            Method::GET,
            &format!("/login/oidc/callback?code=code-3&state={state}"),
            As::Nobody,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        h.get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("krake_session=")),
        "no session"
    );
}

#[tokio::test]
async fn without_configuration_there_is_no_openid_connect() {
    let app = common::spawn().await;
    let (s, _, _) = app.send(Method::GET, "/login/oidc", As::Nobody, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
