//! Who a certificate of the cluster CA speaks for, read from its name (the
//! subject CN, which the `certs` tool also writes as the first SAN).
//!
//! | certificate name            | role                                  |
//! |-----------------------------|---------------------------------------|
//! | `meta-<id>`                 | [`Role::Meta`]: meta-service member   |
//! | `storage-<id>`              | [`Role::Storage`]: storage node `<id>`|
//! | `gateway`, `gateway-<any>`  | [`Role::Gateway`]                     |
//! | `operator`, `operator-<any>`| [`Role::Operator`]: CLI and tools     |
//!
//! Any other name (e.g. `client`) has no role: the meta-service answers it
//! only on `/health` and `/metrics`. The names are a convention of this
//! cluster's own CA: whoever can get a certificate issued by it is trusted
//! with the role its name says (SECURITY.md, "Meta-service").

use crate::NodeId;

/// What a peer may do on the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A meta-service member (Raft, and requests forwarded to the leader).
    Meta(u64),
    /// A storage node, bound to its node id.
    Storage(NodeId),
    /// A gateway: user-facing changes (collections, aliases, operator
    /// routes behind its API keys).
    Gateway,
    /// A person or tool administering the cluster: everything.
    Operator,
}

impl Role {
    /// The role of a certificate named `name`, if it has one.
    pub fn from_cert_name(name: &str) -> Option<Role> {
        let numbered = |prefix: &str| {
            let digits = name.strip_prefix(prefix)?;
            // Plain decimal only: no sign, no leading zeros ("storage-01"
            // would otherwise alias "storage-1").
            if digits.is_empty()
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || (digits.len() > 1 && digits.starts_with('0'))
            {
                return None;
            }
            digits.parse::<u64>().ok()
        };
        let family = |family: &str| {
            name == family
                || name
                    .strip_prefix(family)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| !rest.is_empty())
        };
        if let Some(id) = numbered("meta-") {
            Some(Role::Meta(id))
        } else if let Some(id) = numbered("storage-") {
            Some(Role::Storage(NodeId(id)))
        } else if family("gateway") {
            Some(Role::Gateway)
        } else if family("operator") {
            Some(Role::Operator)
        } else {
            None
        }
    }

    /// A short name for logs and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Role::Meta(_) => "meta",
            Role::Storage(_) => "storage",
            Role::Gateway => "gateway",
            Role::Operator => "operator",
        }
    }
}

/// The certificate name of meta-service member `id`.
pub fn meta_cert_name(id: u64) -> String {
    format!("meta-{id}")
}

/// The certificate name of storage node `id` (also its QUIC server name).
pub fn storage_cert_name(id: NodeId) -> String {
    format!("storage-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_roles() {
        let cases = [
            ("meta-1", Some(Role::Meta(1))),
            ("meta-12", Some(Role::Meta(12))),
            ("storage-3", Some(Role::Storage(NodeId(3)))),
            ("gateway", Some(Role::Gateway)),
            ("gateway-2", Some(Role::Gateway)),
            ("operator", Some(Role::Operator)),
            ("operator-alice", Some(Role::Operator)),
            ("client", None),
            ("storage-", None),
            ("storage-01", None),
            ("storage-+1", None),
            ("storage-1x", None),
            ("meta-x", None),
            ("gateway-", None),
            ("gatewayx", None),
            ("operators", None),
            ("", None),
        ];
        for (name, role) in cases {
            assert_eq!(Role::from_cert_name(name), role, "{name:?}");
        }
        assert_eq!(
            Role::from_cert_name(&storage_cert_name(NodeId(7))),
            Some(Role::Storage(NodeId(7)))
        );
        assert_eq!(
            Role::from_cert_name(&meta_cert_name(2)),
            Some(Role::Meta(2))
        );
    }
}
