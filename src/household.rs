//! The household: the account holder (the contract's customer) and the people they let in.
//! A member has their own login and, per camera, the rights the holder gave; a guest is a
//! member whose rights end at a moment, without anyone acting. Plain code: what a member may
//! do with a camera at a moment ([`Membership::may`]), and which grants make sense
//! ([`Rights::check_for`]), one test per rule.

use crate::account::string_enum;
use crate::{CameraId, Error, Plan, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

string_enum!(
    /// One thing a member may do with one camera.
    Right, "right" {
        /// Watch it live (and hear it).
        Watch = "watch",
        /// See its events, their pictures and clips.
        Events = "events",
        /// Move it (pan-tilt).
        Move = "move",
        /// Speak through its speaker.
        Speak = "speak",
        /// Ask the guard center to send a guard (never on a camera-only plan).
        Dispatch = "dispatch",
        /// Receive its alert mail at their own confirmed addresses.
        Alerts = "alerts",
    }
);

impl Right {
    fn bit(self) -> u8 {
        1 << Right::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// The rights a member has on one camera.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);

    pub fn of(rights: &[Right]) -> Rights {
        Rights(rights.iter().fold(0, |bits, r| bits | r.bit()))
    }

    pub fn has(self, right: Right) -> bool {
        self.0 & right.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rights, in [`Right::ALL`]'s order.
    pub fn list(self) -> Vec<Right> {
        Right::ALL
            .iter()
            .copied()
            .filter(|r| self.has(*r))
            .collect()
    }

    /// Whether these rights make sense on a camera of `plan`: a guard is never requested on
    /// a camera-only plan, and moving a camera, speaking through it or sending a guard to it
    /// are done from its live view, so they come with watching it.
    pub fn check_for(self, plan: Plan) -> Result<(), Error> {
        if self.has(Right::Dispatch) && plan == Plan::CameraOnly {
            return Err(Error::invalid(
                "a camera-only plan has no guard to request: the dispatch right is not for it",
            ));
        }
        for needs_watch in [Right::Move, Right::Speak, Right::Dispatch] {
            if self.has(needs_watch) && !self.has(Right::Watch) {
                return Err(Error::invalid(format_args!(
                    "the {needs_watch} right is used from the live view: it needs watch too"
                )));
            }
        }
        Ok(())
    }
}

impl Serialize for Rights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rights, D::Error> {
        Vec::<Right>::deserialize(d).map(|list| Rights::of(&list))
    }
}

impl std::str::FromStr for Rights {
    type Err = Error;
    /// The database's spelling: the rights' names joined by commas.
    fn from_str(s: &str) -> Result<Rights, Error> {
        let list: Result<Vec<Right>, Error> = s
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::parse)
            .collect();
        list.map(|l| Rights::of(&l))
    }
}

impl std::fmt::Display for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.list().iter().map(|r| r.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

/// What a member was given: rights per camera, and for a guest the moment they end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub cameras: BTreeMap<CameraId, Rights>,
    /// A guest's rights end here; a member's do not end by themselves.
    pub until: Option<UnixMillis>,
}

/// What a member may do with a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The camera is theirs to see, not for this: 403.
    NotThisRight,
    /// Nothing of this camera is theirs (or nothing at all any more): 404, as for a camera of
    /// another household.
    NoCamera,
}

impl Membership {
    /// Whether the membership still gives anything at `now`: a guest's ends at `until`.
    pub fn is_current(&self, now: UnixMillis) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// The rights on `camera` at `now`: none once a guest's time is up.
    pub fn rights_on(&self, camera: CameraId, now: UnixMillis) -> Rights {
        match self.cameras.get(&camera) {
            Some(rights) if self.is_current(now) => *rights,
            _ => Rights::NONE,
        }
    }

    /// Whether the member may use `right` on `camera`, whose plan is `plan`, at `now`.
    pub fn may(&self, camera: CameraId, plan: Plan, right: Right, now: UnixMillis) -> Access {
        let rights = self.rights_on(camera, now);
        if rights.is_empty() {
            Access::NoCamera
        } else if !rights.has(right) || (right == Right::Dispatch && plan == Plan::CameraOnly) {
            Access::NotThisRight
        } else {
            Access::Allowed
        }
    }

    /// The cameras the member sees at `now`: those they have any right on.
    pub fn cameras_seen(&self, now: UnixMillis) -> Vec<CameraId> {
        self.cameras
            .iter()
            .filter(|(camera, _)| !self.rights_on(**camera, now).is_empty())
            .map(|(camera, _)| *camera)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
    const FRONT: CameraId = CameraId(1);
    const GARDEN: CameraId = CameraId(2);

    fn member(rights: &[Right]) -> Membership {
        Membership {
            cameras: [(FRONT, Rights::of(rights))].into(),
            until: None,
        }
    }

    #[test]
    fn each_right_allows_exactly_itself() {
        for right in Right::ALL {
            let m = member(&[*right]);
            for asked in Right::ALL {
                let expected = if asked == right {
                    Access::Allowed
                } else {
                    Access::NotThisRight
                };
                assert_eq!(
                    m.may(FRONT, Plan::Dispatch, *asked, NOW),
                    expected,
                    "{right} {asked}"
                );
            }
        }
    }

    #[test]
    fn a_camera_without_rights_is_no_camera_of_theirs() {
        let m = member(Right::ALL);
        assert_eq!(
            m.may(GARDEN, Plan::Dispatch, Right::Watch, NOW),
            Access::NoCamera
        );
        let empty = Membership {
            cameras: [(FRONT, Rights::NONE)].into(),
            until: None,
        };
        assert_eq!(
            empty.may(FRONT, Plan::Dispatch, Right::Watch, NOW),
            Access::NoCamera
        );
        assert_eq!(empty.cameras_seen(NOW), []);
    }

    #[test]
    fn a_guard_is_never_requested_on_a_camera_only_plan() {
        let m = member(Right::ALL);
        assert_eq!(
            m.may(FRONT, Plan::CameraOnly, Right::Dispatch, NOW),
            Access::NotThisRight
        );
        assert_eq!(
            m.may(FRONT, Plan::CameraOnly, Right::Watch, NOW),
            Access::Allowed
        );
        assert!(
            Rights::of(&[Right::Watch, Right::Dispatch])
                .check_for(Plan::CameraOnly)
                .is_err()
        );
        assert!(
            Rights::of(&[Right::Watch, Right::Dispatch])
                .check_for(Plan::Dispatch)
                .is_ok()
        );
    }

    #[test]
    fn a_guests_rights_end_at_the_time_given() {
        let mut m = member(&[Right::Watch]);
        m.until = Some(NOW.plus(std::time::Duration::from_secs(3600)));
        assert_eq!(
            m.may(FRONT, Plan::Dispatch, Right::Watch, NOW),
            Access::Allowed
        );
        let just_before = UnixMillis(m.until.unwrap().0 - 1);
        assert_eq!(
            m.may(FRONT, Plan::Dispatch, Right::Watch, just_before),
            Access::Allowed
        );
        let at = m.until.unwrap();
        assert!(!m.is_current(at));
        assert_eq!(
            m.may(FRONT, Plan::Dispatch, Right::Watch, at),
            Access::NoCamera
        );
        assert_eq!(m.cameras_seen(at), []);
        assert_eq!(m.cameras_seen(NOW), [FRONT]);
    }

    #[test]
    fn moving_speaking_and_dispatch_come_with_watching() {
        for right in [Right::Move, Right::Speak, Right::Dispatch] {
            assert!(
                Rights::of(&[right]).check_for(Plan::Dispatch).is_err(),
                "{right}"
            );
            assert!(
                Rights::of(&[right, Right::Watch])
                    .check_for(Plan::Dispatch)
                    .is_ok()
            );
        }
        for alone in [Right::Watch, Right::Events, Right::Alerts] {
            assert!(
                Rights::of(&[alone]).check_for(Plan::CameraOnly).is_ok(),
                "{alone}"
            );
        }
    }

    #[test]
    fn rights_are_spelled_as_a_list_in_json_and_joined_in_the_database() {
        let rights = Rights::of(&[Right::Alerts, Right::Watch]);
        assert_eq!(
            serde_json::to_string(&rights).unwrap(),
            r#"["watch","alerts"]"#
        );
        assert_eq!(rights.to_string(), "watch,alerts");
        assert_eq!("watch,alerts".parse::<Rights>().unwrap(), rights);
        assert_eq!("".parse::<Rights>().unwrap(), Rights::NONE);
        assert!("watch,fly".parse::<Rights>().is_err());
        assert!(serde_json::from_str::<Rights>(r#"["fly"]"#).is_err());
    }
}
