//! Key names. Every key of a workspace carries the hash tag `{<workspace>}`: its pools, its
//! API keys' minute windows, its credential records and response bindings live in one slot, so
//! a pick that also admits the request's API key touches one slot (Redis Cluster works too).

use super::super::PoolKey;
use uuid::Uuid;

/// The keys of one pool.
pub struct PoolKeys {
    /// The rotation cursor, `sig|w1,w2,…`.
    pub cursor: String,
    /// Entry records, a hash by credential.
    pub entries: String,
    /// Minute windows, a hash by credential.
    pub windows: String,
    prefix: String,
}

impl PoolKeys {
    /// The keys of `pool`.
    pub fn of(pool: PoolKey) -> Self {
        let prefix = format!(
            "rotor:{{{}}}:pool:{}",
            pool.workspace.simple(),
            pool.model.simple()
        );
        Self {
            cursor: format!("{prefix}:rot"),
            entries: format!("{prefix}:ent"),
            windows: format!("{prefix}:win"),
            prefix,
        }
    }

    /// The binding of an affinity key (hash of the client's key).
    pub fn affinity(&self, key: u64) -> String {
        format!("{}:aff:{key:016x}", self.prefix)
    }

    /// A key of the pool's slot that is never written: it stands in for an absent affinity key
    /// or client window, so that the script's key positions stay fixed.
    pub fn none(&self) -> String {
        format!("{}:none", self.prefix)
    }
}

/// The credential records of a workspace, a hash by credential.
pub fn credentials(workspace: Uuid) -> String {
    format!("rotor:{{{}}}:cred", workspace.simple())
}

/// The set of `<workspace>:<credential>` whose records are rejected or quota-exhausted.
pub const FLAGGED: &str = "rotor:lifecycle:flagged";

/// A member of [`FLAGGED`].
pub fn flagged_member(workspace: Uuid, credential: Uuid) -> String {
    format!("{}:{}", workspace.simple(), credential.simple())
}

/// The workspace and credential of a [`FLAGGED`] member.
pub fn parse_flagged(member: &str) -> Option<(Uuid, Uuid)> {
    let (w, c) = member.split_once(':')?;
    Some((Uuid::parse_str(w).ok()?, Uuid::parse_str(c).ok()?))
}

/// The lock `name`.
pub fn lock(name: &str) -> String {
    format!("rotor:lock:{name}")
}

/// The minute window of a client (gateway API key) of `workspace`: `minute:requests:tokens`.
pub fn client_window(workspace: Uuid, client: Uuid) -> String {
    format!(
        "rotor:{{{}}}:key:{}:win",
        workspace.simple(),
        client.simple()
    )
}

/// The key of a response-id binding (the workspace is the hash tag).
pub fn binding(workspace: Uuid, response_id: &str) -> String {
    format!("rotor:{{{}}}:resp:{response_id}", workspace.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_keys_share_one_hash_tag() {
        let pool = PoolKey {
            workspace: Uuid::from_u128(1),
            model: Uuid::from_u128(2),
        };
        let k = PoolKeys::of(pool);
        let tag = "{00000000000000000000000000000001}";
        let model = "00000000000000000000000000000002";
        assert_eq!(k.cursor, format!("rotor:{tag}:pool:{model}:rot"));
        assert_eq!(
            k.affinity(0xab),
            format!("rotor:{tag}:pool:{model}:aff:00000000000000ab")
        );
        // The workspace's other keys share its slot.
        for other in [
            client_window(pool.workspace, Uuid::from_u128(3)),
            credentials(pool.workspace),
            binding(pool.workspace, "resp_1"),
            k.none(),
        ] {
            assert!(other.starts_with(&format!("rotor:{tag}:")), "{other}");
        }
        let (w, c) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(parse_flagged(&flagged_member(w, c)), Some((w, c)));
        assert_eq!(parse_flagged("nope"), None);
    }
}
