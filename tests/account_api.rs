//! `examples/account_api.rs` (shown in the README) over real HTTP: a host app's own JSON
//! handlers on the crate's self-service flows.

#[path = "support/http.rs"]
mod http_support;

// The example itself, so the README's code is what is tested. Its `main` is not used here.
#[allow(dead_code)]
#[path = "../examples/account_api.rs"]
mod account_api;

use http_support::{client, hardened_config, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower_auth::{Auth, MemoryStore};

const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "another fine passphrase, long enough";

#[tokio::test]
async fn the_account_api_lists_devices_and_changes_the_password() {
    let auth = Auth::new(MemoryStore::new(), hardened_config()).expect("valid config");
    let server = serve(account_api::app(&auth)).await;
    let http = client();
    http.post(server.url("/auth/users"))
        .form(&[("email", "bob@example.com"), ("password", PW)])
        .send()
        .await
        .expect("register")
        .error_for_status()
        .expect("registered");
    let mut cookies = Vec::new();
    for agent in [
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "curl/8.5.0",
    ] {
        let response = http
            .post(server.url("/auth/sessions"))
            .header("User-Agent", agent)
            .form(&[("email", "bob@example.com"), ("password", PW)])
            .send()
            .await
            .expect("log in");
        assert_eq!(response.status(), StatusCode::OK);
        let set_cookie = http_support::set_cookies(&response).remove(0);
        cookies.push(set_cookie.split(';').next().expect("name=value").to_owned());
    }

    let devices: Value = http
        .get(server.url("/account/devices"))
        .header("Cookie", &cookies[0])
        .send()
        .await
        .expect("devices")
        .json()
        .await
        .expect("JSON");
    let devices = devices["devices"].as_array().expect("devices").clone();
    assert_eq!(devices.len(), 2);
    let this: Vec<&Value> = devices
        .iter()
        .filter(|d| d["this_device"] == true)
        .collect();
    assert_eq!(this.len(), 1);
    assert_eq!(this[0]["device"], "Firefox 133 on Linux");

    let wrong = http
        .put(server.url("/account/password"))
        .header("Cookie", &cookies[0])
        .json(&json!({"current_password": "nope", "new_password": NEW_PW}))
        .send()
        .await
        .expect("change");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let changed = http
        .put(server.url("/account/password"))
        .header("Cookie", &cookies[0])
        .json(&json!({"current_password": PW, "new_password": NEW_PW}))
        .send()
        .await
        .expect("change");
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        changed.json::<Value>().await.expect("JSON"),
        json!({"email": "bob@example.com", "signed_out_elsewhere": true})
    );
    for (cookie, expected) in [
        (&cookies[0], StatusCode::OK),
        (&cookies[1], StatusCode::UNAUTHORIZED),
    ] {
        let status = http
            .get(server.url("/account/devices"))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("devices")
            .status();
        assert_eq!(status, expected);
    }

    // Cross-site writes to the app's own routes are refused, as on the crate's.
    let cross_site = http
        .put(server.url("/account/password"))
        .header("Cookie", &cookies[0])
        .header("Sec-Fetch-Site", "cross-site")
        .json(&json!({"current_password": NEW_PW, "new_password": PW}))
        .send()
        .await
        .expect("change");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
}
