//! Accounts: who can log in, their roles, guard centers and languages.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares a closed set of names as an enum with one spelling, used alike by serde, the
/// command line (`FromStr`) and the database (`as_str`).
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The one spelling of this value (API, CLI, database).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> Result<Self, $crate::Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::Error::invalid(format_args!(
                        "unknown {} {:?}; expected one of: {}",
                        $what,
                        s,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}
pub(crate) use string_enum;

/// The impls every validated string type shares: made only through its `parse`, read as
/// `&str`, and (de)serialized as a plain string that is checked on the way in.
macro_rules! validated_string {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_enum!(
    /// What an account may do. Admin work is done only through the relay's command line.
    Role, "role" {
        /// A home owner: sees and controls their own cameras.
        Customer = "customer",
        /// A guard-center operator: works the dispatch queue of their center.
        Operator = "operator",
        /// Someone a customer let into their household: their own login, the rights the
        /// customer gave them (`household`).
        Member = "member",
    }
);

string_enum!(
    /// The regional guard center that serves a customer and employs an operator.
    GuardCenter, "guard center" {
        /// East Japan.
        East = "east",
        /// Tokyo.
        Tokyo = "tokyo",
        /// West Japan.
        West = "west",
    }
);

string_enum!(
    /// The language of a customer's pages and mail.
    Language, "language" {
        /// Japanese.
        Ja = "ja",
        /// English.
        En = "en",
    }
);

/// An email address, trimmed and lower-cased so that one mailbox is one account.
///
/// The check is deliberately plain (one `@`, a dotted domain, no spaces or control
/// characters, at most 254 bytes): the confirmation mail is the real test of an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim().to_lowercase();
        let bad = || Error::invalid(format_args!("{s:?} is not an email address"));
        if s.is_empty() || s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(bad());
        }
        Ok(Email(s))
    }
}

validated_string!(Email);

/// A name people gave to a person or a camera: 1 to 100 characters after trimming.
///
/// Any text is kept as it is (markup, CR/LF included): every place that shows a name sets it
/// as text, and mail headers encode it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if t.is_empty() {
            return Err(Error::invalid("a name must not be empty"));
        }
        if t.chars().count() > Self::MAX_CHARS {
            return Err(Error::invalid(format_args!(
                "a name must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if t.contains('\0') {
            return Err(Error::invalid("a name must not contain NUL characters"));
        }
        Ok(DisplayName(t.to_owned()))
    }
}

validated_string!(DisplayName);

/// A password as typed. Its `Debug` never shows it, so it cannot slip into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Long enough for any passphrase, short enough that hashing it cannot be abused.
    pub const MAX_BYTES: usize = 1024;

    /// A new password being set: it must meet the length rules.
    pub fn new(s: &str) -> Result<Self, Error> {
        if s.chars().count() < Self::MIN_CHARS {
            return Err(Error::invalid(format_args!(
                "a password must be at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if s.len() > Self::MAX_BYTES {
            return Err(Error::invalid(format_args!(
                "a password must be at most {} bytes",
                Self::MAX_BYTES
            )));
        }
        Ok(Password(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_every_spelling() {
        for gc in GuardCenter::ALL {
            assert_eq!(gc.as_str().parse::<GuardCenter>().unwrap(), *gc);
            let json = serde_json::to_string(gc).unwrap();
            assert_eq!(json, format!("\"{}\"", gc.as_str()));
        }
        for l in Language::ALL {
            assert_eq!(l.as_str().parse::<Language>().unwrap(), *l);
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
        }
        let err = "osaka".parse::<GuardCenter>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown guard center \"osaka\"; expected one of: east, tokyo, west"
        );
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Taro@Example.JP ").unwrap().as_str(),
            "taro@example.jp"
        );
        for bad in [
            "",
            "taro",
            "@example.jp",
            "taro@",
            "taro@localhost",
            "taro@.jp",
            "taro@example..jp",
            "ta ro@example.jp",
            "taro@exa\r\nmple.jp",
            "a@b@c.jp",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    #[test]
    fn names_keep_markup_and_line_breaks_as_text() {
        let n = DisplayName::parse("  <script>alert(1)</script>\r\nX-Evil: 1 ").unwrap();
        assert_eq!(n.as_str(), "<script>alert(1)</script>\r\nX-Evil: 1");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"あ".repeat(100)).is_ok());
        assert!(DisplayName::parse(&"あ".repeat(101)).is_err());
        assert!(DisplayName::parse("a\0b").is_err());
    }

    #[test]
    fn passwords_have_length_rules_and_hide_in_debug() {
        assert!(Password::new("short").is_err());
        assert!(Password::new(&"x".repeat(1025)).is_err());
        let p = Password::new("correct horse").unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert_eq!(p.expose(), "correct horse");
    }
}
