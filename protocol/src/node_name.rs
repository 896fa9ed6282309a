//! Node ids written as numbers or as StatefulSet pod names.
//!
//! Kubernetes names the pods of a StatefulSet `<set>-<ordinal>`, ordinals
//! from 0, and hands the name to the pod (`metadata.name`). A storage node
//! or meta-service member given such a name takes `ordinal + 1` as its
//! numeric id: meta-service member ids must be ≥ 1 (0 is refused at start),
//! and one rule for both services keeps pod `vectordb-storage-0` = node 1 =
//! certificate `storage-1`, the numbering of the compose cluster.
//!
//! ```text
//! "7"                   -> 7      (a number is taken as it is)
//! "vectordb-storage-0"  -> 1
//! "vectordb-meta-2"     -> 3
//! "storage", "-3", "x-" -> error
//! ```

/// A node id that is neither a number nor `name-N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeNameError {
    #[error(
        "node id `{0}` is neither a number nor `<name>-<ordinal>` \
         (a StatefulSet pod name such as `vectordb-storage-2`)"
    )]
    Malformed(String),
    #[error("node id `{0}`: the ordinal is too large for a 64-bit id")]
    TooLarge(String),
}

/// The numeric id `s` names: a decimal number as it is, `name-N` as N + 1.
pub fn parse_node_id(s: &str) -> Result<u64, NodeNameError> {
    let s = s.trim();
    let malformed = || NodeNameError::Malformed(s.to_string());
    if is_digits(s) {
        return s
            .parse()
            .map_err(|_| NodeNameError::TooLarge(s.to_string()));
    }
    let (name, ordinal) = s.rsplit_once('-').ok_or_else(malformed)?;
    // A pod name is a DNS label: letters, digits and dashes.
    let name_ok = !name.is_empty()
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !name_ok || !is_digits(ordinal) {
        return Err(malformed());
    }
    ordinal
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| NodeNameError::TooLarge(s.to_string()))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_and_pod_names_map_to_ordinal_plus_one() {
        assert_eq!(parse_node_id("7"), Ok(7));
        assert_eq!(parse_node_id(" 12 "), Ok(12));
        assert_eq!(parse_node_id("vectordb-storage-0"), Ok(1));
        assert_eq!(parse_node_id("vectordb-storage-2"), Ok(3));
        assert_eq!(parse_node_id("meta-10"), Ok(11));
        assert_eq!(parse_node_id("a-b-c-4"), Ok(5));
    }

    #[test]
    fn other_forms_are_refused_with_the_value_in_the_message() {
        for bad in [
            "",
            "storage",
            "-3",
            "x-",
            "storage-2a",
            "sto rage-1",
            "storage-+1",
            "-",
        ] {
            let err = parse_node_id(bad).expect_err(bad);
            assert!(matches!(err, NodeNameError::Malformed(_)), "{bad}: {err}");
            assert!(
                err.to_string().contains(&format!("`{}`", bad.trim())),
                "{err}"
            );
        }
        assert_eq!(
            parse_node_id("s-18446744073709551615"),
            Err(NodeNameError::TooLarge("s-18446744073709551615".into()))
        );
        assert!(matches!(
            parse_node_id("99999999999999999999"),
            Err(NodeNameError::TooLarge(_))
        ));
    }
}
