//! The one rule for collection and alias names, shared by every service.
//!
//! Names travel as URL path segments (gateway), are stored in the cluster
//! map (meta-service) and become directory names on storage nodes
//! (`<data>/collections/<name>/…`), so the rule is written for the
//! strictest of the three, a file system path component:
//!
//! - 1..=255 bytes (the usual file-name limit);
//! - only ASCII letters, digits, `_`, `-` and `.`: no `/` or `\`, no NUL or
//!   control characters, and nothing outside ASCII, which also refuses
//!   look-alikes (Cyrillic `а`, fullwidth `／`) that would let two names
//!   read the same to a person and differ on disk;
//! - not starting with `.` (hidden files, `.` and `..`) nor `-` (read as an
//!   option by command-line tools an operator points at the data dir);
//! - no `..` anywhere, so no name is ever a parent-directory step,
//!   whatever a later caller does with it.
//!
//! Names that break the rule are refused, never rewritten: a silently
//! sanitised name could collide with another collection's directory.

use std::fmt;

use thiserror::Error;

/// Longest name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The rule as one sentence, quoted in every refusal so a client learns
/// what to send instead.
pub const NAME_RULE: &str = "names are 1 to 255 bytes of ASCII letters, digits, '_', '-' and '.', \
     not starting with '.' or '-', and without '..'";

/// What the refused name was meant to name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Collection,
    Alias,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Collection => "collection",
            NameKind::Alias => "alias",
        })
    }
}

/// Which part of the rule a name breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameViolation {
    #[error("it is empty")]
    Empty,
    #[error("it is {len} bytes long (limit {MAX_NAME_BYTES})")]
    TooLong { len: usize },
    #[error("character {ch:?} at byte {at} is not allowed")]
    ForbiddenChar { ch: char, at: usize },
    #[error("it starts with {ch:?}")]
    BadFirstChar { ch: char },
    #[error("it contains '..'")]
    DotDot,
}

/// A refused name: its kind, the name as shown (escaped, shortened) and
/// the part of the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind} name {shown}: {violation}; {NAME_RULE}")]
pub struct InvalidName {
    pub kind: NameKind,
    /// `{:?}` of the name, cut to 64 characters: the refusal must not echo
    /// a megabyte or raw control characters back into logs.
    pub shown: String,
    pub violation: NameViolation,
}

/// Checks `name` against the rule (see the module doc).
pub fn validate_name(kind: NameKind, name: &str) -> Result<(), InvalidName> {
    check(name).map_err(|violation| InvalidName {
        kind,
        shown: shown(name),
        violation,
    })
}

/// [`validate_name`] for a collection.
pub fn validate_collection_name(name: &str) -> Result<(), InvalidName> {
    validate_name(NameKind::Collection, name)
}

/// [`validate_name`] for an alias (aliases share collections' namespace).
pub fn validate_alias_name(name: &str) -> Result<(), InvalidName> {
    validate_name(NameKind::Alias, name)
}

fn check(name: &str) -> Result<(), NameViolation> {
    if name.is_empty() {
        return Err(NameViolation::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameViolation::TooLong { len: name.len() });
    }
    // Character check before the position checks, so "/.." reports the
    // '/' (the more telling part) rather than the first character.
    if let Some((at, ch)) = name
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(NameViolation::ForbiddenChar { ch, at });
    }
    if let Some(ch) = name.chars().next().filter(|c| matches!(c, '.' | '-')) {
        return Err(NameViolation::BadFirstChar { ch });
    }
    if name.contains("..") {
        return Err(NameViolation::DotDot);
    }
    Ok(())
}

fn shown(name: &str) -> String {
    const MAX_SHOWN: usize = 64;
    let mut cut: String = name.chars().take(MAX_SHOWN).collect();
    if cut.len() < name.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn violation(name: &str) -> Option<NameViolation> {
        validate_collection_name(name).err().map(|e| e.violation)
    }

    #[test]
    fn ordinary_names_pass() {
        for name in ["a", "A9", "my_collection", "v1.2-prod", "x.y"] {
            assert_eq!(violation(name), None, "{name}");
        }
        assert_eq!(violation(&"a".repeat(255)), None);
    }

    #[test]
    fn hostile_names_are_refused_with_the_reason() {
        use NameViolation as V;
        let cases: &[(&str, V)] = &[
            ("", V::Empty),
            (".", V::BadFirstChar { ch: '.' }),
            ("..", V::BadFirstChar { ch: '.' }),
            (".hidden", V::BadFirstChar { ch: '.' }),
            ("-rf", V::BadFirstChar { ch: '-' }),
            ("a..b", V::DotDot),
            ("a/b", V::ForbiddenChar { ch: '/', at: 1 }),
            ("../etc", V::ForbiddenChar { ch: '/', at: 2 }),
            ("a\\b", V::ForbiddenChar { ch: '\\', at: 1 }),
            ("a\0b", V::ForbiddenChar { ch: '\0', at: 1 }),
            ("a\nb", V::ForbiddenChar { ch: '\n', at: 1 }),
            ("a b", V::ForbiddenChar { ch: ' ', at: 1 }),
            ("%2e%2e", V::ForbiddenChar { ch: '%', at: 0 }),
            // Cyrillic 'о' (U+043E) in place of the Latin one.
            ("c\u{043e}llection", V::ForbiddenChar { ch: 'о', at: 1 }),
            // Fullwidth solidus.
            ("a\u{ff0f}b", V::ForbiddenChar { ch: '／', at: 1 }),
        ];
        for (name, want) in cases {
            assert_eq!(violation(name).as_ref(), Some(want), "{name:?}");
        }
        assert_eq!(violation(&"a".repeat(256)), Some(V::TooLong { len: 256 }));
    }

    #[test]
    fn the_refusal_names_the_rule_and_keeps_the_echo_short() {
        let err = validate_alias_name(&format!("{}\0", "x".repeat(1000))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid alias name \"xxx"), "{msg}");
        assert!(msg.contains(NAME_RULE), "{msg}");
        assert!(msg.len() < 400, "{msg}");
        assert!(!msg.contains('\0'));
    }

    proptest! {
        /// Whatever passes is a single, plain, non-hidden path component.
        #[test]
        fn accepted_names_are_safe_path_components(name in "\\PC{0,300}") {
            if validate_collection_name(&name).is_ok() {
                prop_assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES);
                prop_assert!(name.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert!(!name.contains(['/', '\\']) && !name.contains(".."));
                prop_assert!(!name.starts_with(['.', '-']));
                let p = std::path::Path::new(&name);
                prop_assert_eq!(p.components().count(), 1);
                prop_assert!(matches!(
                    p.components().next(),
                    Some(std::path::Component::Normal(_))
                ));
            }
        }

        /// Every name over the allowed alphabet is accepted unless its
        /// first character or a '..' breaks the rule.
        #[test]
        fn the_allowed_alphabet_passes(name in "[A-Za-z0-9_.-]{1,255}") {
            let expect_ok = !name.starts_with(['.', '-']) && !name.contains("..");
            prop_assert_eq!(validate_collection_name(&name).is_ok(), expect_ok);
        }

        /// Any one character outside the alphabet spoils a good name.
        #[test]
        fn one_foreign_char_is_refused(
            prefix in "[a-z]{1,10}",
            bad in any::<char>().prop_filter("outside the alphabet", |c| {
                !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            }),
        ) {
            let name = format!("{prefix}{bad}");
            let at = prefix.len();
            prop_assert_eq!(
                violation(&name),
                Some(NameViolation::ForbiddenChar { ch: bad, at })
            );
        }
    }
}
