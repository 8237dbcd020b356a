//! Dispatch requests: a customer asks for a guard to rush to the home; an operator of the
//! customer's guard center accepts and assigns a guard; the guard says from their phone that
//! they are on their way, that they arrived and that they are done (or the operator marks
//! arrival and completion for a guard who called in).
//!
//! The rules as plain code (no I/O, time passed in), so tests can walk every state, action and
//! role:
//!
//! ```text
//! requested ─accept─▶ accepted ─assign─▶ assigned ─depart─▶ en_route ─arrive─▶ arrived ─complete─▶ completed
//!     │                  │                  │  └──────────arrive──────────────▲
//!     └─cancel (free)────┴─cancel (fee due)─┴──────────────┴─cancel (fee due)─▶ cancelled
//! ```
//!
//! Only the customer who owns the request creates and cancels it; only an operator of the
//! customer's guard center accepts and assigns; only the guard assigned says they are on
//! their way; arrival and completion are the guard's or an operator's. The fee is charged
//! when a request is accepted and stays due if the customer cancels afterwards.

use crate::account::string_enum;
use crate::{CustomerId, Error, GuardCenter, OperatorId, UnixMillis};

string_enum!(
    /// Where a dispatch request stands.
    DispatchState, "dispatch state" {
        /// Sent by the customer, waiting for the guard center.
        Requested = "requested",
        /// Taken on by an operator: the fee is due from here on.
        Accepted = "accepted",
        /// A guard is given the request.
        Assigned = "assigned",
        /// The guard said they are on their way.
        EnRoute = "en_route",
        /// The guard is at the home.
        Arrived = "arrived",
        /// Done.
        Completed = "completed",
        /// Called off by the customer.
        Cancelled = "cancelled",
    }
);

string_enum!(
    /// What someone does to a request.
    DispatchAction, "dispatch action" {
        Accept = "accept",
        Assign = "assign",
        /// The guard's "on my way".
        Depart = "depart",
        Arrive = "arrive",
        Complete = "complete",
        Cancel = "cancel",
    }
);

impl DispatchState {
    /// Whether the request is still open (the guard center may still act, and what the
    /// customer shared with it stays visible to the center).
    pub fn is_open(self) -> bool {
        !matches!(self, DispatchState::Completed | DispatchState::Cancelled)
    }
}

/// Who acts on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchActor {
    Customer(CustomerId),
    Operator {
        id: OperatorId,
        center: GuardCenter,
    },
    /// A guard, from their phone.
    Guard {
        id: i64,
        center: GuardCenter,
    },
}

/// The parts of a request the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchRequest {
    pub customer: CustomerId,
    /// The customer's guard center: the only one whose operators see and work the request.
    pub center: GuardCenter,
    pub state: DispatchState,
    /// The guard given the request, once one is.
    pub guard: Option<i64>,
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not this actor's request to see: another customer's, or another center's. Told apart
    /// from a request that does not exist by nobody.
    NotFound,
    /// This role may not take this action (a customer accepting, an operator cancelling).
    Forbidden,
    /// Not from this state (a second accept, a cancel after completion).
    Conflict,
}

/// A transition the rules allowed: store it, with its actor and time, as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub action: DispatchAction,
    pub from: DispatchState,
    pub to: DispatchState,
    pub actor: DispatchActor,
    pub at: UnixMillis,
    /// The fee is charged by this transition (the acceptance).
    pub charges_fee: bool,
}

impl DispatchRequest {
    /// Whether `actor` may see this request at all: its customer, an operator of its guard
    /// center, or the guard given it.
    pub fn visible_to(&self, actor: DispatchActor) -> bool {
        match actor {
            DispatchActor::Customer(c) => c == self.customer,
            DispatchActor::Operator { center, .. } => center == self.center,
            DispatchActor::Guard { id, center } => center == self.center && self.guard == Some(id),
        }
    }

    /// Decides on `action` by `actor` at `now`.
    pub fn apply(
        &self,
        actor: DispatchActor,
        action: DispatchAction,
        now: UnixMillis,
    ) -> Result<Transition, Refusal> {
        use DispatchAction as A;
        use DispatchState as S;
        if !self.visible_to(actor) {
            return Err(Refusal::NotFound);
        }
        let may = match actor {
            DispatchActor::Customer(_) => action == A::Cancel,
            DispatchActor::Operator { .. } => {
                matches!(action, A::Accept | A::Assign | A::Arrive | A::Complete)
            }
            DispatchActor::Guard { .. } => matches!(action, A::Depart | A::Arrive | A::Complete),
        };
        if !may {
            return Err(Refusal::Forbidden);
        }
        let to = match (self.state, action) {
            (S::Requested, A::Accept) => S::Accepted,
            (S::Accepted, A::Assign) => S::Assigned,
            (S::Assigned, A::Depart) => S::EnRoute,
            (S::Assigned | S::EnRoute, A::Arrive) => S::Arrived,
            (S::Arrived, A::Complete) => S::Completed,
            (S::Requested | S::Accepted | S::Assigned | S::EnRoute, A::Cancel) => S::Cancelled,
            _ => return Err(Refusal::Conflict),
        };
        Ok(Transition {
            action,
            from: self.state,
            to,
            actor,
            at: now,
            charges_fee: action == A::Accept,
        })
    }
}

/// Whether a request that went through `states` (in order) owes the fee: it was accepted at
/// some point, whatever came after.
pub fn fee_due(states: &[DispatchState]) -> bool {
    states.iter().any(|s| {
        matches!(
            s,
            DispatchState::Accepted
                | DispatchState::Assigned
                | DispatchState::EnRoute
                | DispatchState::Arrived
                | DispatchState::Completed
        )
    })
}

/// Whether a request in `state` already went through the step `action` leads to (or past
/// it): a step sent again (a phone on a flaky connection that never heard the answer) is
/// then answered as done, not refused. A cancelled request went through no step of the
/// guard's or operator's that was still to come.
pub fn already_through(state: DispatchState, action: DispatchAction) -> bool {
    use DispatchAction as A;
    use DispatchState as S;
    let rank = |s: S| match s {
        S::Requested => 0,
        S::Accepted => 1,
        S::Assigned => 2,
        S::EnRoute => 3,
        S::Arrived => 4,
        S::Completed => 5,
        S::Cancelled => -1,
    };
    let to = match action {
        A::Accept => S::Accepted,
        A::Assign => S::Assigned,
        A::Depart => S::EnRoute,
        A::Arrive => S::Arrived,
        A::Complete => S::Completed,
        A::Cancel => return state == S::Cancelled,
    };
    state != S::Cancelled && rank(state) >= rank(to)
}

/// A place on Earth, in degrees (WGS 84, as phones report it).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// A point, checked: latitude −90…90, longitude −180…180, both finite.
    pub fn new(lat: f64, lon: f64) -> Result<GeoPoint, Error> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(Error::invalid("latitude must be between -90 and 90"));
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(Error::invalid("longitude must be between -180 and 180"));
        }
        Ok(GeoPoint { lat, lon })
    }

    /// The great-circle (straight-line) distance to `other`, in kilometres.
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }
}

/// `LAT,LON`, as the admin command line takes it.
impl std::str::FromStr for GeoPoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<GeoPoint, Error> {
        let bad = || Error::invalid(format_args!("{s:?} is not LATITUDE,LONGITUDE"));
        let (lat, lon) = s.split_once(',').ok_or_else(bad)?;
        let lat = lat.trim().parse().map_err(|_| bad())?;
        let lon = lon.trim().parse().map_err(|_| bad())?;
        GeoPoint::new(lat, lon)
    }
}

/// A guard the console may propose: where they last were, and whether they are free.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardSighting {
    pub guard: i64,
    pub position: Option<GeoPoint>,
    /// When the position was reported.
    pub seen_at: Option<UnixMillis>,
    /// Already assigned to another open request.
    pub busy: bool,
}

/// A guard proposed for a request: the straight-line distance and the time it takes at the
/// average speed (roads are not known here, so both are estimates, and said to be).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Proposal {
    pub guard: i64,
    pub distance_km: f64,
    pub eta_minutes: f64,
}

/// Positions older than this are not used to propose a guard: the guard has moved since.
pub const POSITION_FRESH_FOR_MS: i64 = 30 * 60 * 1000;

/// The free guards with a fresh position, the one who can arrive at `home` first first.
pub fn propose(
    home: GeoPoint,
    guards: &[GuardSighting],
    speed_kmh: f64,
    now: UnixMillis,
) -> Vec<Proposal> {
    let mut proposals: Vec<Proposal> = guards
        .iter()
        .filter(|g| !g.busy)
        .filter(|g| {
            g.seen_at
                .is_some_and(|t| now.0 - t.0 <= POSITION_FRESH_FOR_MS)
        })
        .filter_map(|g| {
            let distance_km = g.position?.distance_km(&home);
            Some(Proposal {
                guard: g.guard,
                distance_km,
                eta_minutes: distance_km / speed_kmh * 60.0,
            })
        })
        .collect();
    proposals.sort_by(|a, b| {
        a.eta_minutes
            .total_cmp(&b.eta_minutes)
            .then(a.guard.cmp(&b.guard))
    });
    proposals
}

/// When a guard at `from` (seen at `seen_at`) reaches `home`, driving at `speed_kmh`: the
/// estimate the customer sees while the guard is on the way. A position older than
/// [`POSITION_FRESH_FOR_MS`] at `now` says nothing of where the guard is now: no estimate.
pub fn expected_arrival(
    from: GeoPoint,
    seen_at: UnixMillis,
    home: GeoPoint,
    speed_kmh: f64,
    now: UnixMillis,
) -> Option<UnixMillis> {
    if now.0 - seen_at.0 > POSITION_FRESH_FOR_MS {
        return None;
    }
    let hours = from.distance_km(&home) / speed_kmh;
    Some(UnixMillis(now.0 + (hours * 3_600_000.0).round() as i64))
}

/// The customer's note to the guard center, checked: at most [`Note::MAX_CHARS`] characters,
/// no control characters but line breaks and tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub const MAX_CHARS: usize = 1000;

    /// An empty or blank note is no note.
    pub fn parse(s: &str) -> Result<Option<Note>, Error> {
        let t = s.trim().replace("\r\n", "\n");
        if t.is_empty() {
            return Ok(None);
        }
        if t.chars().count() > Self::MAX_CHARS {
            return Err(Error::invalid(format_args!(
                "a note must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(Error::invalid("a note must not contain control characters"));
        }
        Ok(Some(Note(t)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DispatchAction as A;
    use DispatchState as S;

    const OWNER: CustomerId = CustomerId(1);
    const AT: UnixMillis = UnixMillis(1_700_000_000_000);

    /// The guard a request is given once it is assigned.
    const GUARD: i64 = 20;

    /// The roles a test acts as, named.
    fn roles() -> [(&'static str, DispatchActor); 7] {
        [
            ("owner", DispatchActor::Customer(OWNER)),
            ("other customer", DispatchActor::Customer(CustomerId(2))),
            (
                "operator of the center",
                DispatchActor::Operator {
                    id: OperatorId(10),
                    center: GuardCenter::Tokyo,
                },
            ),
            (
                "operator of another center",
                DispatchActor::Operator {
                    id: OperatorId(11),
                    center: GuardCenter::West,
                },
            ),
            (
                "guard given the request",
                DispatchActor::Guard {
                    id: GUARD,
                    center: GuardCenter::Tokyo,
                },
            ),
            (
                "another guard of the center",
                DispatchActor::Guard {
                    id: GUARD + 1,
                    center: GuardCenter::Tokyo,
                },
            ),
            (
                "a guard of another center with the same number",
                DispatchActor::Guard {
                    id: GUARD,
                    center: GuardCenter::West,
                },
            ),
        ]
    }

    /// Whether a request in `state` has a guard: from the assignment on (a cancelled one, in
    /// these tests, was cancelled after it).
    fn has_guard(state: S) -> bool {
        !matches!(state, S::Requested | S::Accepted)
    }

    /// The whole rule book: what each role gets for each action in each state.
    fn expected(state: S, action: A, role: &str) -> Result<S, Refusal> {
        match role {
            "other customer"
            | "operator of another center"
            | "another guard of the center"
            | "a guard of another center with the same number" => return Err(Refusal::NotFound),
            "guard given the request" if !has_guard(state) => return Err(Refusal::NotFound),
            "owner" if action != A::Cancel => return Err(Refusal::Forbidden),
            "operator of the center" if matches!(action, A::Cancel | A::Depart) => {
                return Err(Refusal::Forbidden);
            }
            "guard given the request" if matches!(action, A::Accept | A::Assign | A::Cancel) => {
                return Err(Refusal::Forbidden);
            }
            _ => {}
        }
        match (state, action) {
            (S::Requested, A::Accept) => Ok(S::Accepted),
            (S::Accepted, A::Assign) => Ok(S::Assigned),
            (S::Assigned, A::Depart) => Ok(S::EnRoute),
            (S::Assigned, A::Arrive) | (S::EnRoute, A::Arrive) => Ok(S::Arrived),
            (S::Arrived, A::Complete) => Ok(S::Completed),
            (S::Requested, A::Cancel)
            | (S::Accepted, A::Cancel)
            | (S::Assigned, A::Cancel)
            | (S::EnRoute, A::Cancel) => Ok(S::Cancelled),
            _ => Err(Refusal::Conflict),
        }
    }

    #[test]
    fn every_state_action_and_role_follows_the_rule_book() {
        let mut allowed = 0;
        for &state in S::ALL {
            let request = DispatchRequest {
                customer: OWNER,
                center: GuardCenter::Tokyo,
                state,
                guard: has_guard(state).then_some(GUARD),
            };
            for &action in A::ALL {
                for (role, actor) in roles() {
                    let got = request.apply(actor, action, AT);
                    let want = expected(state, action, role);
                    assert_eq!(got.map(|t| t.to), want, "{state} + {action} by {role}");
                    if let Ok(t) = got {
                        allowed += 1;
                        assert_eq!(
                            (t.from, t.action, t.actor, t.at),
                            (state, action, actor, AT)
                        );
                        assert_eq!(t.charges_fee, action == A::Accept, "{state} + {action}");
                    }
                }
            }
        }
        // accept, assign, depart; arrive from two states by two roles; complete by two roles;
        // and four cancels.
        assert_eq!(allowed, 13);
    }

    #[test]
    fn cancelling_before_acceptance_is_free_and_after_it_the_fee_stays() {
        assert!(!fee_due(&[S::Requested, S::Cancelled]));
        assert!(fee_due(&[S::Requested, S::Accepted, S::Cancelled]));
        assert!(fee_due(&[
            S::Requested,
            S::Accepted,
            S::Assigned,
            S::Cancelled
        ]));
        assert!(fee_due(&[
            S::Requested,
            S::Accepted,
            S::Assigned,
            S::EnRoute,
            S::Arrived,
            S::Completed
        ]));
        assert!(!fee_due(&[S::Requested]));
    }

    #[test]
    fn only_open_requests_are_open() {
        let open: Vec<S> = S::ALL.iter().copied().filter(|s| s.is_open()).collect();
        assert_eq!(
            open,
            [
                S::Requested,
                S::Accepted,
                S::Assigned,
                S::EnRoute,
                S::Arrived
            ]
        );
    }

    #[test]
    fn a_step_sent_again_is_through_once_the_request_reached_it_or_went_past() {
        assert!(already_through(S::EnRoute, A::Depart));
        assert!(
            already_through(S::Arrived, A::Depart),
            "arrived without waiting"
        );
        assert!(already_through(S::Completed, A::Arrive));
        assert!(already_through(S::Completed, A::Complete));
        assert!(!already_through(S::Assigned, A::Depart));
        assert!(!already_through(S::EnRoute, A::Arrive));
        assert!(
            !already_through(S::Cancelled, A::Complete),
            "cancelled is not done"
        );
        assert!(!already_through(S::Cancelled, A::Depart));
        assert!(already_through(S::Cancelled, A::Cancel));
    }

    #[test]
    fn points_are_checked_and_distances_are_great_circles() {
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -180.5).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!("35.68".parse::<GeoPoint>().is_err());
        assert!("north,east".parse::<GeoPoint>().is_err());
        let tokyo = "35.6812, 139.7671".parse::<GeoPoint>().unwrap();
        let osaka = "34.7025,135.4959".parse::<GeoPoint>().unwrap();
        // Tokyo station to Osaka station: about 403 km as the crow flies.
        let d = tokyo.distance_km(&osaka);
        assert!((400.0..406.0).contains(&d), "{d}");
        assert_eq!(tokyo.distance_km(&tokyo), 0.0);
    }

    #[test]
    fn the_free_guard_who_arrives_first_is_proposed_first() {
        let home = GeoPoint::new(35.0, 139.0).unwrap();
        let now = UnixMillis(10 * POSITION_FRESH_FOR_MS);
        let fresh = Some(UnixMillis(now.0 - 60_000));
        let at = |lat: f64| Some(GeoPoint::new(lat, 139.0).unwrap());
        let guards = [
            GuardSighting {
                guard: 1,
                position: at(35.10),
                seen_at: fresh,
                busy: false,
            },
            GuardSighting {
                guard: 2,
                position: at(35.01),
                seen_at: fresh,
                busy: true,
            },
            GuardSighting {
                guard: 3,
                position: at(35.05),
                seen_at: fresh,
                busy: false,
            },
            GuardSighting {
                guard: 4,
                position: at(35.001),
                seen_at: Some(UnixMillis(now.0 - POSITION_FRESH_FOR_MS - 1)),
                busy: false,
            },
            GuardSighting {
                guard: 5,
                position: None,
                seen_at: None,
                busy: false,
            },
        ];
        let p = propose(home, &guards, 30.0, now);
        assert_eq!(p.iter().map(|p| p.guard).collect::<Vec<_>>(), [3, 1]);
        // 0.05° of latitude is 5.56 km: 11.1 minutes at 30 km/h.
        assert!((p[0].distance_km - 5.56).abs() < 0.01, "{:?}", p[0]);
        assert!((p[0].eta_minutes - 11.12).abs() < 0.05, "{:?}", p[0]);
    }

    #[test]
    fn the_expected_arrival_is_the_drive_from_a_fresh_position_and_none_from_a_stale_one() {
        let home = GeoPoint::new(35.0, 139.0).unwrap();
        let guard = GeoPoint::new(35.05, 139.0).unwrap();
        let now = UnixMillis(10 * POSITION_FRESH_FOR_MS);
        // 5.56 km at 30 km/h: 11.1 minutes from now.
        let eta = expected_arrival(guard, UnixMillis(now.0 - 1000), home, 30.0, now).unwrap();
        assert!((eta.0 - now.0 - 667_000).abs() < 2_000, "{}", eta.0 - now.0);
        assert_eq!(
            expected_arrival(home, now, home, 30.0, now),
            Some(now),
            "there already"
        );
        let stale = UnixMillis(now.0 - POSITION_FRESH_FOR_MS - 1);
        assert_eq!(expected_arrival(guard, stale, home, 30.0, now), None);
    }

    #[test]
    fn notes_are_capped_and_plain() {
        assert_eq!(Note::parse("  ").unwrap(), None);
        assert_eq!(
            Note::parse(" back door\r\nopen ")
                .unwrap()
                .unwrap()
                .as_str(),
            "back door\nopen"
        );
        assert!(Note::parse(&"x".repeat(Note::MAX_CHARS)).is_ok());
        assert!(Note::parse(&"x".repeat(Note::MAX_CHARS + 1)).is_err());
        assert!(Note::parse("bell\u{7}").is_err());
    }
}
