//! The identity-check password (本人確認用パスワード): a word the customer chose, separate
//! from their login, that a guard-center operator asks for on the phone to know the caller is
//! the customer. The customer sets it behind their login password; only the company's desk
//! resets a forgotten one.
//!
//! Plain rules, no I/O: how a spoken word is compared ([`spoken_form`]), what a valid one is
//! ([`IdentityPassword::new`]), and how many checks a customer's password takes in an hour
//! ([`admit`]), so that an operator, or someone posing as one, cannot guess it by trying.

use crate::{Error, UnixMillis};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// The form in which an identity-check password is hashed and compared: what the customer
/// typed and what the operator types from the caller's voice differ only in what a voice
/// does not carry. Compatibility forms are folded (NFKC: full-width `ＡＢＣ１２３` from a
/// Japanese input method is `abc123`, half-width kana are full-width), letters are lower
/// case, and runs of spaces are one space, none at either end.
pub fn spoken_form(said: &str) -> String {
    let folded: String = said.nfkc().flat_map(char::to_lowercase).collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A new identity-check password, checked and in its [`spoken_form`].
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityPassword(String);

impl IdentityPassword {
    /// Short enough to say on the phone, long enough not to be guessed in the few checks an
    /// hour allows.
    pub const MIN_CHARS: usize = 4;
    pub const MAX_CHARS: usize = 64;

    pub fn new(s: &str) -> Result<IdentityPassword, Error> {
        let spoken = spoken_form(s);
        let n = spoken.chars().count();
        if n < Self::MIN_CHARS {
            return Err(Error::invalid(format_args!(
                "an identity-check password must be at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if n > Self::MAX_CHARS {
            return Err(Error::invalid(format_args!(
                "an identity-check password must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if spoken.chars().any(char::is_control) {
            return Err(Error::invalid(
                "an identity-check password must not contain control characters",
            ));
        }
        Ok(IdentityPassword(spoken))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdentityPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityPassword(<redacted>)")
    }
}

/// How many checks a customer's identity-check password takes per [`CHECK_WINDOW_MS`]: a
/// caller who gets it wrong twice can be asked again; nobody can go through a word list.
pub const CHECKS_PER_WINDOW: i64 = 5;
/// The window the checks are counted in: an hour from the first check of the window.
pub const CHECK_WINDOW_MS: i64 = 60 * 60 * 1000;

/// The checks counted so far: since when, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckWindow {
    pub started_at: UnixMillis,
    pub checks: i64,
}

/// Whether one more check may be made at `now` after `window`: the window to store with it,
/// or, past the limit, when the next check may be made.
pub fn admit(window: CheckWindow, now: UnixMillis) -> Result<CheckWindow, UnixMillis> {
    let ends = UnixMillis(window.started_at.0 + CHECK_WINDOW_MS);
    // The first check starts a window; a clock set back stays in the window it was in, so
    // the count is never cleared early.
    if window.checks == 0 || now >= ends {
        return Ok(CheckWindow {
            started_at: now,
            checks: 1,
        });
    }
    if window.checks >= CHECKS_PER_WINDOW {
        return Err(ends);
    }
    Ok(CheckWindow {
        checks: window.checks + 1,
        ..window
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: UnixMillis = UnixMillis(1_700_000_000_000);

    #[test]
    fn what_a_voice_does_not_carry_is_not_compared() {
        assert_eq!(spoken_form("  Sakura  Mochi "), "sakura mochi");
        assert_eq!(spoken_form("ＡＢＣ１２３"), "abc123");
        assert_eq!(spoken_form("ｻｸﾗ"), "サクラ");
        assert_eq!(spoken_form("さくら\t2024"), "さくら 2024");
        // What a voice does carry stays: hiragana is not katakana, a word is not another.
        assert_ne!(spoken_form("さくら"), spoken_form("サクラ"));
    }

    #[test]
    fn a_new_password_is_sayable_and_not_too_short() {
        assert!(IdentityPassword::new("abc").is_err());
        assert!(
            IdentityPassword::new("  a b  ").is_err(),
            "three characters once spaces fold"
        );
        assert_eq!(
            IdentityPassword::new(" Ｍｏｍｏ ").unwrap().expose(),
            "momo"
        );
        assert!(IdentityPassword::new(&"x".repeat(IdentityPassword::MAX_CHARS)).is_ok());
        assert!(IdentityPassword::new(&"x".repeat(IdentityPassword::MAX_CHARS + 1)).is_err());
        assert!(IdentityPassword::new("momo\u{7}").is_err());
        assert_eq!(
            format!("{:?}", IdentityPassword::new("secret word").unwrap()),
            "IdentityPassword(<redacted>)"
        );
    }

    #[test]
    fn checks_are_counted_within_an_hour_and_refused_past_the_limit() {
        let mut w = CheckWindow {
            started_at: UnixMillis(0),
            checks: 0,
        };
        for n in 1..=CHECKS_PER_WINDOW {
            w = admit(w, UnixMillis(AT.0 + n)).unwrap();
            assert_eq!(w.checks, n);
            assert_eq!(
                w.started_at,
                UnixMillis(AT.0 + 1),
                "the window starts at the first"
            );
        }
        let ends = UnixMillis(AT.0 + 1 + CHECK_WINDOW_MS);
        assert_eq!(admit(w, UnixMillis(ends.0 - 1)), Err(ends));
    }

    #[test]
    fn the_first_check_starts_the_window() {
        let never = CheckWindow {
            started_at: UnixMillis(0),
            checks: 0,
        };
        assert_eq!(
            admit(never, UnixMillis(1000)),
            Ok(CheckWindow {
                started_at: UnixMillis(1000),
                checks: 1
            })
        );
    }

    #[test]
    fn a_new_hour_starts_a_new_count() {
        let full = CheckWindow {
            started_at: AT,
            checks: CHECKS_PER_WINDOW,
        };
        let next = UnixMillis(AT.0 + CHECK_WINDOW_MS);
        assert_eq!(
            admit(full, next),
            Ok(CheckWindow {
                started_at: next,
                checks: 1
            })
        );
    }

    #[test]
    fn a_clock_set_back_does_not_clear_the_count() {
        let full = CheckWindow {
            started_at: AT,
            checks: CHECKS_PER_WINDOW,
        };
        let ends = UnixMillis(AT.0 + CHECK_WINDOW_MS);
        assert_eq!(admit(full, UnixMillis(AT.0 - 1000)), Err(ends));
    }
}
