//! Dispatch requests: a customer asks for a guard to rush to the home; an operator of the
//! customer's guard center accepts, assigns a guard, marks the guard's arrival and completes.
//!
//! The rules as plain code (no I/O, time passed in), so tests can walk every state, action and
//! role:
//!
//! ```text
//! requested ──accept──▶ accepted ──assign──▶ assigned ──arrive──▶ arrived ──complete──▶ completed
//!     │                    │                    │
//!     └──cancel (free)─────┴──cancel (fee due)──┴──▶ cancelled
//! ```
//!
//! Only the customer who owns the request creates and cancels it; only an operator of the
//! customer's guard center moves it on. The fee is charged when a request is accepted and
//! stays due if the customer cancels afterwards.

use crate::account::string_enum;
use crate::{CustomerId, GuardCenter, OperatorId, UnixMillis};

string_enum!(
    /// Where a dispatch request stands.
    DispatchState, "dispatch state" {
        /// Sent by the customer, waiting for the guard center.
        Requested = "requested",
        /// Taken on by an operator: the fee is due from here on.
        Accepted = "accepted",
        /// A guard is on the way.
        Assigned = "assigned",
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
    Operator { id: OperatorId, center: GuardCenter },
}

/// The parts of a request the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchRequest {
    pub customer: CustomerId,
    /// The customer's guard center: the only one whose operators see and work the request.
    pub center: GuardCenter,
    pub state: DispatchState,
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
    /// Whether `actor` may see this request at all: its customer, or an operator of its
    /// guard center.
    pub fn visible_to(&self, actor: DispatchActor) -> bool {
        match actor {
            DispatchActor::Customer(c) => c == self.customer,
            DispatchActor::Operator { center, .. } => center == self.center,
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
        let by_customer = matches!(actor, DispatchActor::Customer(_));
        if by_customer != (action == A::Cancel) {
            return Err(Refusal::Forbidden);
        }
        let to = match (self.state, action) {
            (S::Requested, A::Accept) => S::Accepted,
            (S::Accepted, A::Assign) => S::Assigned,
            (S::Assigned, A::Arrive) => S::Arrived,
            (S::Arrived, A::Complete) => S::Completed,
            (S::Requested | S::Accepted | S::Assigned, A::Cancel) => S::Cancelled,
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
                | DispatchState::Arrived
                | DispatchState::Completed
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use DispatchAction as A;
    use DispatchState as S;

    const OWNER: CustomerId = CustomerId(1);
    const AT: UnixMillis = UnixMillis(1_700_000_000_000);

    /// The roles a test acts as, named.
    fn roles() -> [(&'static str, DispatchActor); 4] {
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
        ]
    }

    /// The whole rule book: what each role gets for each action in each state.
    fn expected(state: S, action: A, role: &str) -> Result<S, Refusal> {
        match role {
            "other customer" | "operator of another center" => return Err(Refusal::NotFound),
            "owner" if action != A::Cancel => return Err(Refusal::Forbidden),
            "operator of the center" if action == A::Cancel => return Err(Refusal::Forbidden),
            _ => {}
        }
        match (state, action) {
            (S::Requested, A::Accept) => Ok(S::Accepted),
            (S::Accepted, A::Assign) => Ok(S::Assigned),
            (S::Assigned, A::Arrive) => Ok(S::Arrived),
            (S::Arrived, A::Complete) => Ok(S::Completed),
            (S::Requested, A::Cancel) | (S::Accepted, A::Cancel) | (S::Assigned, A::Cancel) => {
                Ok(S::Cancelled)
            }
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
        // accept, assign, arrive, complete, and three cancels.
        assert_eq!(allowed, 7);
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
            S::Arrived,
            S::Completed
        ]));
        assert!(!fee_due(&[S::Requested]));
    }

    #[test]
    fn only_open_requests_are_open() {
        let open: Vec<S> = S::ALL.iter().copied().filter(|s| s.is_open()).collect();
        assert_eq!(open, [S::Requested, S::Accepted, S::Assigned, S::Arrived]);
    }
}
