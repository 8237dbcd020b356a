//! Arming: whether a household wants alert mail now, and from which cameras. Plain code over
//! every case; the relay stores the parts and asks these functions.
//!
//! - The household is **Away** (every camera set to alert when away does), **Home** (only the
//!   cameras set to alert when home, say the outdoor ones) or **Off** (none). Events are
//!   recorded whatever the mode; only the alert mail depends on it.
//! - A weekly **schedule** is a list of switches, each "at 08:00 on these days, switch to
//!   Away", in the home's zone (Japan, UTC+9: the service's homes are there). A switch by
//!   hand holds until the next scheduled one; a scheduled one holds until the next switch of
//!   either kind.
//! - A household that never switched, and has no schedule, is Away: as it was before arming
//!   existed, every camera alerts.

use crate::UnixMillis;
use serde::{Deserialize, Serialize};

/// The home's zone: UTC+9, no daylight saving.
const HOME_OFFSET_MILLIS: i64 = 9 * 3600 * 1000;
const DAY_MILLIS: i64 = 24 * 3600 * 1000;
/// 1970-01-01 was a Thursday: Monday-based weekday 3.
const EPOCH_WEEKDAY: i64 = 3;

/// The household's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Away,
    Home,
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Away => "away",
            Mode::Home => "home",
            Mode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "away" => Some(Mode::Away),
            "home" => Some(Mode::Home),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// One camera's alert switches: whether it alerts when the household is away, and when home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraAlerts {
    pub away: bool,
    pub home: bool,
}

impl Default for CameraAlerts {
    /// Alerts when away; quiet while someone is home.
    fn default() -> Self {
        CameraAlerts {
            away: true,
            home: false,
        }
    }
}

/// Whether a camera with `alerts` mails an alert while the household is in `mode`.
pub fn alerts(mode: Mode, alerts: CameraAlerts) -> bool {
    match mode {
        Mode::Away => alerts.away,
        Mode::Home => alerts.home,
        Mode::Off => false,
    }
}

/// The days of the week, Monday first, as the API names them.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One scheduled switch: at `minute` past midnight (home time) on each of `days` (bit 0 is
/// Monday … bit 6 Sunday), the household switches to `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub days: u8,
    pub minute: u16,
    pub mode: Mode,
}

/// Why a [`Switch`] cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSwitch {
    #[error("pick at least one day")]
    NoDays,
    #[error("unknown day {0:?} (mon … sun)")]
    UnknownDay(String),
    #[error("the time must be HH:MM, 00:00 to 23:59")]
    BadTime,
}

impl Switch {
    /// A switch from the API's parts: day names, `"HH:MM"`, a mode.
    pub fn parse(days: &[String], time: &str, mode: Mode) -> Result<Switch, BadSwitch> {
        let mut bits = 0u8;
        for day in days {
            let i = DAYS
                .iter()
                .position(|d| d == day)
                .ok_or_else(|| BadSwitch::UnknownDay(day.clone()))?;
            bits |= 1 << i;
        }
        if bits == 0 {
            return Err(BadSwitch::NoDays);
        }
        let (h, m) = time.split_once(':').ok_or(BadSwitch::BadTime)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(BadSwitch::BadTime);
        }
        let (h, m): (u16, u16) = (h.parse().unwrap_or(99), m.parse().unwrap_or(99));
        if h > 23 || m > 59 {
            return Err(BadSwitch::BadTime);
        }
        Ok(Switch {
            days: bits,
            minute: h * 60 + m,
            mode,
        })
    }

    /// The day names of the switch, Monday first.
    pub fn day_names(&self) -> Vec<&'static str> {
        (0..7)
            .filter(|i| self.days & (1 << i) != 0)
            .map(|i| DAYS[i])
            .collect()
    }

    /// `"HH:MM"`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}", self.minute / 60, self.minute % 60)
    }

    /// The moments this switch fires on the days from `back` days before `now`'s (home time)
    /// to `ahead` days after it.
    fn firings(&self, now: UnixMillis, back: i64, ahead: i64) -> impl Iterator<Item = UnixMillis> {
        let home_day = (now.0 + HOME_OFFSET_MILLIS).div_euclid(DAY_MILLIS);
        (-back..=ahead).filter_map(move |d| {
            let day = home_day + d;
            let weekday = (day + EPOCH_WEEKDAY).rem_euclid(7);
            (self.days & (1 << weekday) != 0).then(|| {
                UnixMillis(day * DAY_MILLIS + i64::from(self.minute) * 60_000 - HOME_OFFSET_MILLIS)
            })
        })
    }

    /// The latest moment this switch fired at or before `now` (within the last week).
    fn last_at_or_before(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.firings(now, 7, 0)
            .filter(|at| at.0 <= now.0)
            .max_by_key(|at| at.0)
    }

    /// The next moment after `now` this switch fires.
    fn next_after(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.firings(now, 0, 7)
            .filter(|at| at.0 > now.0)
            .min_by_key(|at| at.0)
    }
}

/// How the household's mode was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// Never switched: the default.
    Default,
    /// A switch by hand.
    Hand,
    /// The schedule.
    Schedule,
}

/// The household's mode at some moment, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub mode: Mode,
    pub since: Option<UnixMillis>,
    pub by: By,
}

/// The mode at `now`, from the last switch by hand (its mode and moment) and the schedule.
pub fn state(by_hand: Option<(Mode, UnixMillis)>, schedule: &[Switch], now: UnixMillis) -> State {
    let scheduled = schedule
        .iter()
        .filter_map(|s| Some((s.last_at_or_before(now)?, s.mode)))
        .max_by_key(|(at, _)| at.0);
    let by_hand = by_hand.filter(|(_, at)| at.0 <= now.0);
    match (by_hand, scheduled) {
        (Some((mode, at)), Some((s_at, _))) if at.0 >= s_at.0 => State {
            mode,
            since: Some(at),
            by: By::Hand,
        },
        (_, Some((at, mode))) => State {
            mode,
            since: Some(at),
            by: By::Schedule,
        },
        (Some((mode, at)), None) => State {
            mode,
            since: Some(at),
            by: By::Hand,
        },
        (None, None) => State {
            mode: Mode::Away,
            since: None,
            by: By::Default,
        },
    }
}

/// The schedule's next switch after `now`: its moment and mode.
pub fn next(schedule: &[Switch], now: UnixMillis) -> Option<(UnixMillis, Mode)> {
    schedule
        .iter()
        .filter_map(|s| Some((s.next_after(now)?, s.mode)))
        .min_by_key(|(at, _)| at.0)
}

/// The moment of the schedule's latest switch at or before `now`, if any.
pub fn last_scheduled(schedule: &[Switch], now: UnixMillis) -> Option<UnixMillis> {
    schedule
        .iter()
        .filter_map(|s| s.last_at_or_before(now))
        .max_by_key(|at| at.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 (a Monday) at `hh:mm` home time.
    fn monday(hh: i64, mm: i64) -> UnixMillis {
        // 2026-11-23T00:00+09:00 = 2026-11-22T15:00Z.
        UnixMillis(1_795_359_600_000 + (hh * 60 + mm) * 60_000)
    }

    fn weekdays_away_8_to_18() -> Vec<Switch> {
        let weekdays: Vec<String> = DAYS[..5].iter().map(|d| d.to_string()).collect();
        vec![
            Switch::parse(&weekdays, "08:00", Mode::Away).unwrap(),
            Switch::parse(&weekdays, "18:00", Mode::Home).unwrap(),
        ]
    }

    #[test]
    fn the_test_clock_starts_on_a_monday_at_home_midnight() {
        let t = ::time::OffsetDateTime::from_unix_timestamp(monday(0, 0).0 / 1000).unwrap();
        assert_eq!(t.weekday(), ::time::Weekday::Sunday); // in UTC, 15:00 the day before
        assert_eq!(t.hour(), 15);
    }

    #[test]
    fn a_household_that_never_switched_is_away() {
        let s = state(None, &[], monday(12, 0));
        assert_eq!((s.mode, s.by, s.since), (Mode::Away, By::Default, None));
    }

    #[test]
    fn each_mode_alerts_only_the_cameras_set_for_it() {
        let outdoor = CameraAlerts {
            away: true,
            home: true,
        };
        let indoor = CameraAlerts::default();
        assert!(alerts(Mode::Away, outdoor) && alerts(Mode::Away, indoor));
        assert!(alerts(Mode::Home, outdoor) && !alerts(Mode::Home, indoor));
        assert!(!alerts(Mode::Off, outdoor) && !alerts(Mode::Off, indoor));
    }

    #[test]
    fn a_schedule_switches_at_its_times_on_its_days_in_home_time() {
        let s = weekdays_away_8_to_18();
        assert_eq!(state(None, &s, monday(7, 59)).mode, Mode::Home); // Friday 18:00's
        assert_eq!(state(None, &s, monday(8, 0)).mode, Mode::Away);
        assert_eq!(state(None, &s, monday(17, 59)).mode, Mode::Away);
        assert_eq!(state(None, &s, monday(18, 0)).mode, Mode::Home);
        // Saturday noon: still Friday evening's Home.
        let saturday = UnixMillis(monday(12, 0).0 + 5 * DAY_MILLIS);
        let st = state(None, &s, saturday);
        assert_eq!((st.mode, st.by), (Mode::Home, By::Schedule));
        assert_eq!(st.since, Some(UnixMillis(monday(18, 0).0 + 4 * DAY_MILLIS)));
    }

    #[test]
    fn a_switch_by_hand_holds_until_the_next_scheduled_one() {
        let s = weekdays_away_8_to_18();
        let off_at_9 = Some((Mode::Off, monday(9, 0)));
        let st = state(off_at_9, &s, monday(12, 0));
        assert_eq!((st.mode, st.by), (Mode::Off, By::Hand));
        let st = state(off_at_9, &s, monday(18, 0));
        assert_eq!((st.mode, st.by), (Mode::Home, By::Schedule));
    }

    #[test]
    fn the_next_switch_is_the_nearest_on_a_later_day_too() {
        let s = weekdays_away_8_to_18();
        assert_eq!(next(&s, monday(7, 0)), Some((monday(8, 0), Mode::Away)));
        assert_eq!(next(&s, monday(8, 0)), Some((monday(18, 0), Mode::Home)));
        // Friday 20:00 → Monday 08:00.
        let friday_evening = UnixMillis(monday(20, 0).0 + 4 * DAY_MILLIS);
        assert_eq!(
            next(&s, friday_evening),
            Some((UnixMillis(monday(8, 0).0 + 7 * DAY_MILLIS), Mode::Away))
        );
        assert_eq!(next(&[], monday(7, 0)), None);
    }

    #[test]
    fn the_last_scheduled_switch_is_found_a_week_back() {
        let s = weekdays_away_8_to_18();
        assert_eq!(last_scheduled(&s, monday(12, 0)), Some(monday(8, 0)));
        let sunday = UnixMillis(monday(12, 0).0 + 6 * DAY_MILLIS);
        assert_eq!(
            last_scheduled(&s, sunday),
            Some(UnixMillis(monday(18, 0).0 + 4 * DAY_MILLIS))
        );
    }

    #[test]
    fn switches_are_made_from_day_names_and_a_time_or_refused() {
        let days = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let s = Switch::parse(&days(&["mon", "sun"]), "07:05", Mode::Off).unwrap();
        assert_eq!(
            (s.days, s.minute, s.time()),
            (0b100_0001, 425, "07:05".into())
        );
        assert_eq!(s.day_names(), vec!["mon", "sun"]);
        assert_eq!(
            Switch::parse(&[], "07:05", Mode::Off),
            Err(BadSwitch::NoDays)
        );
        assert_eq!(
            Switch::parse(&days(&["someday"]), "07:05", Mode::Off),
            Err(BadSwitch::UnknownDay("someday".into()))
        );
        for bad in ["24:00", "7:05", "07:60", "0705", "aa:bb", ""] {
            assert_eq!(
                Switch::parse(&days(&["mon"]), bad, Mode::Off),
                Err(BadSwitch::BadTime),
                "{bad}"
            );
        }
    }
}
