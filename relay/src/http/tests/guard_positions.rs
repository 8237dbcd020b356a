//! A guard's position reports through the router: a device with the guard's token reports,
//! one a second at most by the relay's clock; anything else is 401.

use super::*;
use eyeward::{GuardCenter, UnixMillis};

async fn report(app: &App, token: &str, lat: f64) -> Answer {
    let request = Request::post("/guard/v1/position")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"lat": lat, "lon": 139.76}).to_string()))
        .unwrap();
    app.send(request).await
}

#[tokio::test]
async fn a_device_reports_one_position_a_second_at_most() {
    let start = UnixMillis(1_900_000_000_000);
    let app = App::with_clock(Clock::simulated(start)).await;
    let audit = Audit::admin(start);
    app.store
        .add_guard(
            GuardCenter::Tokyo,
            "Sato",
            &hash_token("sato-token"),
            None,
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(
        report(&app, "sato-token", 35.70).await.status,
        StatusCode::NO_CONTENT
    );
    let again = report(&app, "sato-token", 35.71).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(again.body["code"], "too_many_positions");
    assert_eq!(again.headers[header::RETRY_AFTER], "1");
    assert_eq!(
        report(&app, "not-a-token", 35.71).await.status,
        StatusCode::UNAUTHORIZED
    );

    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    tokio::time::resume();
    assert_eq!(
        report(&app, "sato-token", 35.72).await.status,
        StatusCode::NO_CONTENT
    );
    let guards = app.store.guards(Some(GuardCenter::Tokyo)).await.unwrap();
    let kept = guards[0].position.unwrap().lat;
    assert_eq!(kept, 35.72, "the one refused was not kept");
}
