//! `connect-events app serve` over HTTP on loopback, on the embedded backend: the page carries a
//! strict CSP whose `frame-ancestors` is the configured instance origin (no `X-Frame-Options`);
//! the API verifies RS256 tokens against a JWKS (minted here with a fresh key), answers 401 without
//! or with a bad/expired token, 403 for another agent's contact, 409 for a chat, flags the caller of
//! the agent's voice contact with the number from the contact (a number in the body is ignored),
//! once however often it is clicked, and shows only masked numbers.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use connect_events_tests::harness::unique;
use connect_events_tests::privacy::assert_no_number;
use connect_events_tests::target_bin;
use serde_json::{json, Value};

const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
const CALLER: &str = "+14255550100";
const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "agent-app";
const ORIGIN: &str = "https://example.my.connect.aws";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(key: &KeyPair, claims: Value) -> String {
    let head = b64(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})
        .to_string()
        .as_bytes());
    let body = b64(claims.to_string().as_bytes());
    let signed = format!("{head}.{body}");
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{signed}.{}", b64(&sig))
}

fn claims(user: &str, exp_in: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now + exp_in, "iat": now, "username": user})
}

/// One HTTP/1.1 request; returns (status, lowercased head, body).
fn http(
    url: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = bearer
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, rest) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), rest.to_string())
}

/// `n` and `e` of a DER `RSAPublicKey` (`SEQUENCE { INTEGER n, INTEGER e }`), without sign bytes.
fn rsa_public_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
        let (tag, first) = (d[0], d[1] as usize);
        let (len, at) = if first < 0x80 {
            (first, 2)
        } else {
            let k = first & 0x7f;
            (
                d[2..2 + k].iter().fold(0usize, |a, b| a << 8 | *b as usize),
                2 + k,
            )
        };
        (tag, &d[at..at + len], &d[at + len..])
    }
    let (_, seq, _) = tlv(der);
    let (_, n, rest) = tlv(seq);
    let (_, e, _) = tlv(rest);
    let strip = |v: &[u8]| {
        v.iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    (strip(n), strip(e))
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[test]
fn the_app_server_verifies_agents_and_flags_only_their_callers() {
    let state = std::env::temp_dir().join(unique("agent-app"));
    std::fs::create_dir_all(state.join("connect").join("contacts")).unwrap();
    std::fs::create_dir_all(state.join("connect").join("users")).unwrap();
    let contact = |id: &str, agent: &str, channel: &str| {
        let described = json!({"Contact": {
            "Id": id, "Channel": channel, "InitiationMethod": "INBOUND",
            "CustomerEndpoint": {"Type": "TELEPHONE_NUMBER", "Address": CALLER},
            "AgentInfo": {"Id": agent}
        }});
        std::fs::write(
            state
                .join("connect")
                .join("contacts")
                .join(format!("{id}.json")),
            described.to_string(),
        )
        .unwrap();
    };
    contact("c-1", "u-a", "VOICE");
    contact("c-chat", "u-a", "CHAT");
    for (id, name) in [("u-a", "agent-a"), ("u-b", "agent-b")] {
        std::fs::write(
            state
                .join("connect")
                .join("users")
                .join(format!("{id}.json")),
            json!({"User": {"Id": id, "Username": name}}).to_string(),
        )
        .unwrap();
    }
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let (n, e) = rsa_public_components(key.public_key().as_ref());
    let jwks = state.join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "n": b64(&n), "e": b64(&e)}]})
            .to_string(),
    )
    .unwrap();

    let mut child = Command::new(target_bin("connect-events"))
        .args(["app", "serve", "--addr", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .env("APP_JWKS_FILE", &jwks)
        .env("APP_JWT_ISSUER", ISSUER)
        .env("APP_JWT_AUDIENCE", AUDIENCE)
        .env("APP_FRAME_ANCESTORS", ORIGIN)
        .env("CONNECT_INSTANCE_ID", INSTANCE)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start app serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("ready line")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut server = Server { child, url };
    let url = server.url.clone();

    // The page: a strict CSP that lets only the instance frame it. `/` sends the browser to the
    // app's address (its files are relative to it), with the same headers.
    let (status, head, _) = http(&url, "GET", "/", None, None);
    assert_eq!(status, 302);
    assert!(head.contains("location: /app/"), "{head}");
    assert!(
        head.contains(&format!("frame-ancestors {ORIGIN}")),
        "{head}"
    );
    let (status, head, _) = http(&url, "GET", "/app/", None, None);
    assert_eq!(status, 200);
    assert!(
        head.contains(&format!("frame-ancestors {ORIGIN}")),
        "{head}"
    );
    assert!(
        head.contains("default-src 'self'") && head.contains("script-src 'self'"),
        "{head}"
    );
    assert!(!head.contains("x-frame-options"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    // 401: no token, a token signed by another key, an expired one, a wrong audience.
    let a = token(&key, claims("agent-a", 300));
    let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let mut wrong_aud = claims("agent-a", 300);
    wrong_aud["aud"] = json!("someone-else");
    for bearer in [
        None,
        Some(token(&other, claims("agent-a", 300))),
        Some(token(&key, claims("agent-a", -3600))),
        Some(token(&key, wrong_aud)),
    ] {
        let (status, _, body) = http(
            &url,
            "GET",
            "/api/deny-list/flags/c-1",
            bearer.as_deref(),
            None,
        );
        assert_eq!(status, 401, "{body}");
    }

    // Agent A's voice contact, not listed yet.
    let (status, _, body) = http(&url, "GET", "/api/deny-list/flags/c-1", Some(&a), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["listed"], false);
    // Agent B may not flag it; a chat cannot be flagged; an unknown contact is 404.
    let b = token(&key, claims("agent-b", 300));
    let (status, _, _) = http(
        &url,
        "POST",
        "/api/deny-list/flags",
        Some(&b),
        Some(&json!({"contactId": "c-1"})),
    );
    assert_eq!(status, 403);
    let (status, _, _) = http(
        &url,
        "POST",
        "/api/deny-list/flags",
        Some(&a),
        Some(&json!({"contactId": "c-chat"})),
    );
    assert_eq!(status, 409);
    let (status, _, _) = http(
        &url,
        "POST",
        "/api/deny-list/flags",
        Some(&a),
        Some(&json!({"contactId": "c-none"})),
    );
    assert_eq!(status, 404);

    // Flag: the number comes from the contact (the tampered `number` is ignored); twice = once.
    let tampered =
        json!({"contactId": "c-1", "reason": "abusive", "ttl": "7d", "number": "+19995550100"});
    let (status, _, body) = http(
        &url,
        "POST",
        "/api/deny-list/flags",
        Some(&a),
        Some(&tampered),
    );
    assert_eq!(status, 201, "{body}");
    let answer = json_of(&body);
    assert_eq!(
        answer["number"],
        connect_events_core::deny_list::mask(CALLER)
    );
    assert!(answer["expiresAt"].as_i64().is_some(), "{answer}");
    let (status, _, body) = http(
        &url,
        "POST",
        "/api/deny-list/flags",
        Some(&a),
        Some(&tampered),
    );
    assert_eq!(status, 200, "a second click changes nothing: {body}");
    let (_, _, body) = http(&url, "GET", "/api/deny-list/flags/c-1", Some(&a), None);
    assert_eq!(json_of(&body)["listed"], true, "{body}");

    // The deny list holds exactly the contact's caller, added by agent A from the app. Stop the
    // server first (it holds the state directory's lock), keeping what it logged.
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut stderr = String::new();
    if let Some(mut e) = server.child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let out = Command::new(target_bin("connect-events"))
        .args(["denylist", "list", "--format", "json", "--state-dir"])
        .arg(&state)
        .env("CONNECT_EVENTS_LOCK_WAIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains(CALLER) && !text.contains("+19995550100"),
        "{text}"
    );
    assert!(
        text.contains("agent-a") && text.contains("\"agent\""),
        "{text}"
    );
    assert!(stderr.contains("agent app: caller flagged"), "{stderr}");
    assert_no_number("app serve", &stderr, &[CALLER]);
}

/// The `agent-app` Lambda under the Runtime API emulator, with DynamoDB on moto and the Connect
/// fake (DescribeContact, DescribeUser): an HTTP API payload-2.0 event whose JWT claims name the
/// contact's agent flags the caller (201, then 200), without claims it is 401, another agent 403;
/// the page and its files come from the packaged front end (`$LAMBDA_TASK_ROOT/web`) with the CSP, and
/// the page's configuration names the issuer and client; a missing `APP_ASSETS_DIR` is an init error.
#[tokio::test]
async fn the_lambda_serves_the_same_api_behind_the_http_apis_jwt_authorizer() {
    use connect_events_core::deny_list::DenyStore;
    use connect_events_handlers::aws::dynamodb::DynamoDenyStore;
    use connect_events_tests::connect_fake::ConnectFake;
    use connect_events_tests::harness::moto;
    use connect_events_tests::lambda_emulator::LambdaProcess;
    use connect_events_tests::seed::{live_voice_contact, Endpoints};

    let moto = moto().await;
    let table = unique("app-denylist");
    let store = DynamoDenyStore::from_client(moto.dynamodb().await, &table);
    store.ensure_table().await.expect("table");
    let fake = ConnectFake::start();
    let mut contact = live_voice_contact(INSTANCE, "123456789012", "c-lambda", CALLER);
    contact["AgentInfo"] = json!({"Id": "u-a"});
    fake.add_contact(INSTANCE, contact);
    fake.add_user(INSTANCE, "u-a", "agent-a");
    fake.add_user(INSTANCE, "u-b", "agent-b");
    let endpoints = Endpoints::local(Some(&fake)).await;
    // The function's package as infra/agent-app/Makefile lays it out: the front end in web/ beside
    // the binary, found through LAMBDA_TASK_ROOT.
    let task_root = std::env::temp_dir().join(unique("agent-app-task"));
    let web = task_root.join("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), "<script src=app.js></script>").unwrap();
    std::fs::write(web.join("app.js"), "console.log('app')").unwrap();
    let icon = [0x89u8, b'P', b'N', b'G', 0xff, 0x00];
    std::fs::write(web.join("icon.png"), icon).unwrap();
    let task_root = task_root.display().to_string();
    let env = endpoints.env(&[
        ("DENYLIST_TABLE", table.as_str()),
        ("CONNECT_INSTANCE_ID", INSTANCE),
        ("APP_FRAME_ANCESTORS", ORIGIN),
        ("LAMBDA_TASK_ROOT", task_root.as_str()),
        ("APP_JWT_ISSUER", ISSUER),
        ("APP_JWT_AUDIENCE", AUDIENCE),
    ]);
    // A front end configured but missing is a packaging error: the function refuses to start.
    let mut broken = env.clone();
    broken.push(("APP_ASSETS_DIR".into(), "/nonexistent/web".into()));
    let refused = LambdaProcess::spawn(&target_bin("agent-app"), "agent-app", &broken);
    let started = std::time::Instant::now();
    while refused.init_error().is_none() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let error = refused.init_error().expect("an init error");
    assert_eq!(error["errorType"], "Configuration", "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("APP_ASSETS_DIR"),
        "{error}"
    );
    drop(refused);
    let lambda = LambdaProcess::spawn(&target_bin("agent-app"), "agent-app", &env);
    let request = |method: &str, path: &str, body: Option<Value>, user: Option<&str>| {
        let mut event = json!({
            "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path,
            "rawQueryString": "", "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
            "isBase64Encoded": false
        });
        if let Some(body) = body {
            event["body"] = json!(body.to_string());
        }
        if let Some(user) = user {
            event["requestContext"]["authorizer"] =
                json!({"jwt": {"claims": {"username": user, "iss": ISSUER}, "scopes": null}});
        }
        lambda
            .invoke(&event, std::time::Duration::from_secs(20))
            .expect_response()
    };
    let page = request("GET", "/app/", None, None);
    assert_eq!(page["statusCode"], 200);
    let csp = page["headers"]["content-security-policy"].as_str().unwrap();
    assert!(csp.contains(&format!("frame-ancestors {ORIGIN}")), "{csp}");
    assert!(page["headers"].get("x-frame-options").is_none());
    assert_eq!(page["body"], "<script src=app.js></script>");
    let script = request("GET", "/app/app.js", None, None);
    assert_eq!(
        (&script["statusCode"], &script["headers"]["content-type"]),
        (&json!(200), &json!("text/javascript; charset=utf-8"))
    );
    let png = request("GET", "/app/icon.png", None, None);
    assert_eq!(png["isBase64Encoded"], true, "{png}");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(png["body"].as_str().unwrap())
            .unwrap(),
        icon
    );
    let page_config = request("GET", "/app/config.json", None, None);
    let page_config: Value = serde_json::from_str(page_config["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        page_config,
        json!({"issuer": ISSUER, "clientId": AUDIENCE, "scope": "openid"})
    );
    let root = request("GET", "/", None, None);
    assert_eq!(
        (&root["statusCode"], &root["headers"]["location"]),
        (&json!(302), &json!("/app/"))
    );

    let flag = json!({"contactId": "c-lambda", "reason": "abusive", "number": "+19995550100"});
    assert_eq!(
        request("POST", "/api/deny-list/flags", Some(flag.clone()), None)["statusCode"],
        401
    );
    assert_eq!(
        request(
            "POST",
            "/api/deny-list/flags",
            Some(flag.clone()),
            Some("agent-b")
        )["statusCode"],
        403
    );
    let created = request(
        "POST",
        "/api/deny-list/flags",
        Some(flag.clone()),
        Some("agent-a"),
    );
    assert_eq!(created["statusCode"], 201, "{created}");
    assert_eq!(
        request("POST", "/api/deny-list/flags", Some(flag), Some("agent-a"))["statusCode"],
        200
    );
    let stored = store
        .get(&CALLER.parse().unwrap())
        .await
        .unwrap()
        .expect("entry written");
    assert_eq!(stored.added_by.as_deref(), Some("agent-a"));
    assert!(store
        .get(&"+19995550100".parse().unwrap())
        .await
        .unwrap()
        .is_none());
    assert_no_number("agent-app", &lambda.logs().join("\n"), &[CALLER]);
    assert!(!serde_json::to_string(&created).unwrap().contains(CALLER));
}
