//! The guard-center console under load: 1000 open dispatch requests over the three centers
//! (stored before the relay starts), then
//! - the console's list (`GET /api/ops/dispatch-requests`) as an operator of one center sees
//!   it, p50/p95 (goal ≤ 50 ms), against `GET /healthz` on the same relay (a request that
//!   only pings the database) as the floor;
//! - a customer's request to the moment the operator's console stream
//!   (`/api/ops/dispatch-requests/live`, what the console page listens to) carries it,
//!   p50/p95 (goal p95 ≤ 500 ms).
//!
//! Release relay on loopback; `bench/dispatch.sh` runs it.

use anyhow::{Context, Result, bail};
use eyeward::{
    CameraModel, CameraSource, CustomerId, DisplayName, Email, GuardCenter, Language, Password,
    Plan, Role, UnixMillis,
};
use eyeward_bench::process::start_relay;
use eyeward_bench::quantile;
use eyeward_relay::auth::hash_password;
use eyeward_relay::store::{Audit, NewAccount, NewCamera, NewDispatch, Store};
use serde_json::{Value, json};
use std::time::Instant;

const PASSWORD: &str = "bench password";

fn summary(name: &str, ms: &[f64]) -> Value {
    let (p50, p95, max) = (quantile(ms, 0.5), quantile(ms, 0.95), quantile(ms, 1.0));
    println!(
        "{name:<36} n={:<4} p50 {p50:7.2} ms   p95 {p95:7.2} ms   max {max:7.2} ms",
        ms.len()
    );
    json!({ "p50_ms": p50, "p95_ms": p95, "max_ms": max, "n": ms.len() })
}

fn account(role: Role, email: &str, center: GuardCenter, hash: &str) -> Result<NewAccount> {
    Ok(NewAccount {
        role,
        email: Email::parse(email)?,
        name: DisplayName::parse(email.split('@').next().unwrap_or("someone"))?,
        guard_center: center,
        lang: Language::En,
        password_hash: hash.to_owned(),
    })
}

/// Stores `open` requests spread over the centers (each customer one camera, one request),
/// an operator per center and one more customer who asks during the run. Returns that
/// customer's camera id.
async fn provision(store: &Store, open: usize) -> Result<i64> {
    let audit = Audit::admin(UnixMillis::now());
    let hash = hash_password(&Password::new(PASSWORD)?)?;
    for center in GuardCenter::ALL {
        store
            .create_account(
                account(
                    Role::Operator,
                    &format!("op-{center}@example.jp"),
                    *center,
                    &hash,
                )?,
                &audit,
            )
            .await?;
    }
    let mut asker_camera = 0;
    for n in 0..=open {
        let center = GuardCenter::ALL[n % GuardCenter::ALL.len()];
        let email = format!("c{n}@example.jp");
        let id = CustomerId(
            store
                .create_account(account(Role::Customer, &email, center, &hash)?, &audit)
                .await?,
        );
        let camera = store
            .add_camera(
                NewCamera {
                    customer_id: id,
                    name: DisplayName::parse("Porch")?,
                    model: CameraModel::Fixed,
                    plan: Plan::Dispatch,
                    source: CameraSource::Agent,
                    agent_token_hash: Some(format!("bench-token-{n}")),
                },
                &audit,
            )
            .await?;
        if n == open {
            // The customer who asks during the run.
            asker_camera = camera.0;
            break;
        }
        store
            .create_dispatch(
                NewDispatch {
                    customer: id,
                    center,
                    camera_id: camera.0,
                    camera_name: "Porch",
                    note: None,
                    fee_yen: 3300,
                    share_snapshot: false,
                    share_live: false,
                    clip_event_id: None,
                },
                &audit,
            )
            .await?;
    }
    Ok(asker_camera)
}

async fn login(base: &str, email: &str) -> Result<reqwest::Client> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let resp = http
        .post(format!("{base}/api/login"))
        .header("origin", base)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 200, "login {email}: {}", resp.status());
    Ok(http)
}

/// Times `n` GETs of `url` in a row, in ms.
async fn time_gets(http: &reqwest::Client, url: &str, n: usize) -> Result<Vec<f64>> {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let resp = http.get(url).send().await?;
        anyhow::ensure!(resp.status() == 200, "{url}: {}", resp.status());
        resp.bytes().await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(ms)
}

/// Whether the server-sent events in `text` include request `id` as requested.
fn announces(text: &str, id: i64) -> bool {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .any(|v| v["id"] == id && v["state"] == "requested")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let open: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let asks: usize = args.next().map_or(Ok(50), |s| s.parse())?;
    let dir = std::env::temp_dir().join(format!("eyeward-dispatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let t = Instant::now();
    let asker_camera = {
        let store = Store::open_sqlite(&data).await?;
        provision(&store, open).await?
    };
    println!(
        "stored {open} open requests over 3 centers in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
            data.to_str().context("utf-8 path")?
        ),
    )?;
    let (_relay, base) = start_relay(&config, &dir.join("relay.log"))?;

    let operator = login(&base, "op-tokyo@example.jp").await?;
    let list_url = format!("{base}/api/ops/dispatch-requests");
    let listed: Value = operator.get(&list_url).send().await?.json().await?;
    let in_list = listed["requests"].as_array().map_or(0, Vec::len);
    let ours = summary(
        &format!("console list ({in_list} requests)"),
        &time_gets(&operator, &list_url, 200).await?,
    );
    let floor = summary(
        "GET /healthz (floor)",
        &time_gets(&operator, &format!("{base}/healthz"), 200).await?,
    );

    // The asker is customer number `open`: of center ALL[open % 3].
    let center = GuardCenter::ALL[open % GuardCenter::ALL.len()];
    let watcher = login(&base, &format!("op-{center}@example.jp")).await?;
    let customer = login(&base, &format!("c{open}@example.jp")).await?;
    let mut stream = watcher
        .get(format!("{base}/api/ops/dispatch-requests/live"))
        .send()
        .await?;
    let mut seen = String::new();
    let mut delays = Vec::with_capacity(asks);
    for _ in 0..asks {
        let t = Instant::now();
        let resp = customer
            .post(format!("{base}/api/dispatch-requests"))
            .header("origin", &base)
            .json(&json!({"camera_id": asker_camera}))
            .send()
            .await?;
        if resp.status() != 201 {
            bail!("request: {} {}", resp.status(), resp.text().await?);
        }
        let id = resp.json::<Value>().await?["id"].as_i64().context("id")?;
        while !announces(&seen, id) {
            let chunk = stream.chunk().await?.context("the console stream ended")?;
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        delays.push(t.elapsed().as_secs_f64() * 1e3);
        seen.clear();
        let cancel = customer
            .post(format!("{base}/api/dispatch-requests/{id}/cancel"))
            .header("origin", &base)
            .send()
            .await?;
        anyhow::ensure!(cancel.status() == 200, "cancel: {}", cancel.status());
    }
    let visible = summary("request → operator's console stream", &delays);

    let list_p95 = ours["p95_ms"].as_f64().unwrap_or(f64::MAX);
    let visible_p95 = visible["p95_ms"].as_f64().unwrap_or(f64::MAX);
    println!(
        "goal list ≤ 50 ms: {} (p95 {list_p95:.2} ms, {:.1}× the floor); goal request → console p95 ≤ 500 ms: {} ({visible_p95:.2} ms)",
        if list_p95 <= 50.0 { "met" } else { "NOT met" },
        list_p95 / floor["p95_ms"].as_f64().unwrap_or(1.0).max(0.001),
        if visible_p95 <= 500.0 {
            "met"
        } else {
            "NOT met"
        },
    );
    println!(
        "{}",
        json!({ "list": ours, "healthz": floor, "request_to_console": visible, "open": open })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
