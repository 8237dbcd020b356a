//! The agent's PTZ driver against the simulator's ONVIF service, in-process.

use super::client::{Position, Ptz};
use eyeward::CameraModel;
use eyeward::clock::Clock;
use eyeward_camera_sim::{Simulator, SimulatorConfig, onvif};
use std::time::Duration;

/// A simulated camera of `model` with its ONVIF service on a free port; the device URL.
async fn camera(model: CameraModel, credentials: Option<(&str, &str)>) -> (Simulator, String) {
    let mut config = SimulatorConfig::new(model);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.credentials = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
    let sim = Simulator::start(config.clone()).unwrap();
    let listen = "127.0.0.1:0".parse().unwrap();
    let addr = onvif::serve(&sim, config.credentials, listen)
        .await
        .unwrap();
    (sim, format!("http://{addr}/onvif/device_service"))
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn the_driver_moves_a_pan_tilt_camera_and_reads_where_it_is() {
    let (_sim, url) = camera(CameraModel::PanTilt, Some(("admin", "pw"))).await;
    let creds = Some(("admin".to_owned(), "pw".to_owned()));
    let ptz = Ptz::connect(&url, creds, SECOND, Clock::real())
        .await
        .unwrap();
    ptz.continuous(
        Position {
            pan: 1.0,
            tilt: 0.0,
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let moving = ptz.status().await.unwrap();
    assert!(moving.moving && moving.position.pan > 0.0, "{moving:?}");
    ptz.stop().await.unwrap();
    assert!(!ptz.status().await.unwrap().moving);
    ptz.absolute(Position {
        pan: 0.5,
        tilt: -0.5,
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let there = ptz.status().await.unwrap();
    assert_eq!(
        there.position,
        Position {
            pan: 0.5,
            tilt: -0.5
        }
    );
    let preset = ptz.set_preset("gate").await.unwrap();
    ptz.goto_home().await.unwrap();
    ptz.relative(Position {
        pan: -0.1,
        tilt: 0.0,
    })
    .await
    .unwrap();
    ptz.goto_preset(&preset).await.unwrap();
    let err = ptz.goto_preset("no-such-preset").await.unwrap_err();
    assert!(err.to_string().contains("no such preset"), "{err}");
    // A continuous move stops by itself after its timeout (the camera's own dead-man).
    ptz.continuous(
        Position {
            pan: -1.0,
            tilt: 0.0,
        },
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!ptz.status().await.unwrap().moving);
}

#[tokio::test]
async fn a_wrong_password_and_a_fixed_camera_are_clear_errors() {
    let (_sim, url) = camera(CameraModel::PanTilt, Some(("admin", "pw"))).await;
    let wrong = Some(("admin".to_owned(), "guess".to_owned()));
    let err = Ptz::connect(&url, wrong, SECOND, Clock::real())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("UsernameToken"), "{err}");
    let (_fixed, url) = camera(CameraModel::Fixed, None).await;
    let err = Ptz::connect(&url, None, SECOND, Clock::real())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("no pan-tilt"), "{err}");
    // Nobody there: an error within the timeout, not a hang.
    let started = std::time::Instant::now();
    let gone = Ptz::connect(
        "http://127.0.0.1:9/onvif/device_service",
        None,
        SECOND,
        Clock::real(),
    )
    .await;
    assert!(gone.is_err() && started.elapsed() < Duration::from_secs(3));
}
