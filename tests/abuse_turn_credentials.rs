//! TURN credentials are the viewer's own and expire: the relay hands each live view a TURN
//! username and password made with the secret it shares with the TURN server (the TURN REST
//! API scheme), and Debian's coturn, started with `use-auth-secret`, checks them. A viewer
//! that can only reach the relay through TURN gets its video with them; another customer's
//! username with these passwords is refused, and so is the credential once its time is up.

mod common;

use anyhow::{Context, Result, ensure};
use common::turn::Coturn;
use common::{Process, Relay, wait_online};
use eyeward_bench::viewer::{Eyeward, loopback_api};
use std::time::{Duration, Instant};
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy;

const PW: &str = "correct horse battery";
const SECRET: &str = "tests-turn-secret-0f3c9a";

/// A relay that hands out credentials for `coturn`, with `extra` in its `[webrtc]` table.
fn relay_for(coturn: &Coturn, extra: &str) -> Result<Relay> {
    Relay::start(&format!(
        "[webrtc]\nice_addresses = [\"127.0.0.1\"]\n{extra}\n\
         [[webrtc.ice_servers]]\nurls = [\"turn:127.0.0.1:{}?transport=udp\"]\nsecret = \"{SECRET}\"\n",
        coturn.port
    ))
}

/// A customer `who` with an online agent camera; returns their id, the camera's, its agent
/// and the customer's WHEP client.
async fn customer_watching(relay: &Relay, who: &str) -> Result<(i64, i64, Process, Eyeward)> {
    let email = format!("{who}@example.jp");
    let customer = relay.customer(&email, who, "tokyo", PW)?;
    let cam = relay.camera(customer, "Porch", "fixed", "dispatch", "agent")?;
    let id = cam["id"].as_i64().context("id")?;
    let agent = relay.start_agent(
        cam["agent_token"].as_str().context("token")?,
        "sim://fixed",
        who,
    )?;
    wait_online(
        &relay.login(&email, PW).await?,
        id,
        true,
        Duration::from_secs(15),
    )
    .await?;
    let client = Eyeward::login(&relay.base, &email, PW).await?;
    Ok((customer, id, agent, client))
}

/// The one TURN server a direct (loopback) live view of `camera` was handed.
async fn turn_server_handed(client: &Eyeward, camera: i64) -> Result<RTCIceServer> {
    let api = loopback_api()?;
    let viewer = client.join(&api, camera).await?;
    let servers = viewer.ice_servers.clone();
    client.leave(viewer).await?;
    ensure!(servers.len() == 1, "one TURN server, got {servers:?}");
    servers.into_iter().next().context("server")
}

/// The expiry (unix time) and viewer of a TURN REST username.
fn username_parts(server: &RTCIceServer) -> Result<(i64, &str)> {
    let (expiry, viewer) = server.username.split_once(':').context("expiry:viewer")?;
    Ok((expiry.parse()?, viewer))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_viewer_gets_a_turn_credential_of_its_own_that_carries_video_through_coturn()
-> Result<()> {
    let coturn = Coturn::start(SECRET).await?;
    let relay = relay_for(&coturn, "")?;
    let (alice_id, alice_cam, _alice_agent, alice) = customer_watching(&relay, "alice").await?;
    let (bob_id, bob_cam, _bob_agent, bob) = customer_watching(&relay, "bob").await?;

    let alice_turn = turn_server_handed(&alice, alice_cam).await?;
    let bob_turn = turn_server_handed(&bob, bob_cam).await?;
    let (expiry, viewer) = username_parts(&alice_turn)?;
    assert_eq!(viewer, format!("c{alice_id}"));
    assert_eq!(username_parts(&bob_turn)?.1, format!("c{bob_id}"));
    // Valid as long as the longest live view (8 h by default), not longer.
    let eight_hours = 8 * 3600;
    ensure!(
        (expiry - unix_now() - eight_hours).abs() < 120,
        "expires at {expiry}, now {}",
        unix_now()
    );
    assert_ne!(alice_turn.credential, bob_turn.credential);
    ensure!(
        !relay.log().contains(SECRET),
        "the TURN secret reached the log"
    );

    // coturn takes each credential as handed, and not another customer's username with it.
    ensure!(
        coturn
            .allocates(&alice_turn.username, &alice_turn.credential)
            .await?,
        "coturn refused the relay's credential; its log:\n{}",
        coturn.log()
    );
    ensure!(
        !coturn
            .allocates(&bob_turn.username, &alice_turn.credential)
            .await?,
        "coturn took Alice's password for Bob's username"
    );

    // A viewer that may only use TURN (as behind a firewall that drops direct UDP) watches
    // through coturn with the credential.
    let relayed = RTCConfiguration {
        ice_servers: vec![alice_turn.clone()],
        ice_transport_policy: RTCIceTransportPolicy::Relay,
        ..Default::default()
    };
    let viewer = alice
        .join_with(&loopback_api()?, alice_cam, relayed)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while viewer.packets() < 100 {
        ensure!(
            Instant::now() < deadline,
            "{} packets through TURN; coturn's log:\n{}",
            viewer.packets(),
            coturn.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        coturn.log().contains(&alice_turn.username),
        "coturn's log does not name the viewer's username:\n{}",
        coturn.log()
    );
    alice.leave(viewer).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_refuses_a_turn_credential_once_its_time_is_up() -> Result<()> {
    let coturn = Coturn::start(SECRET).await?;
    // Live views (and so their credentials) last 3 s here.
    let relay = relay_for(&coturn, "max_session = \"3s\"")?;
    let (_, cam, _agent, alice) = customer_watching(&relay, "alice").await?;
    let turn = turn_server_handed(&alice, cam).await?;
    let (expiry, _) = username_parts(&turn)?;
    ensure!(
        expiry - unix_now() <= 3,
        "expires at {expiry}, now {}",
        unix_now()
    );
    ensure!(
        coturn.allocates(&turn.username, &turn.credential).await?,
        "coturn refused a fresh credential; its log:\n{}",
        coturn.log()
    );
    while unix_now() <= expiry + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(
        !coturn.allocates(&turn.username, &turn.credential).await?,
        "coturn took an expired credential"
    );
    Ok(())
}
