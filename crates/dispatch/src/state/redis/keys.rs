//! Key names. A pool's keys share the hash tag `{<workspace>:<model>}` (one pick, one slot);
//! a workspace's credential records and response bindings share `{<workspace>}`.

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
    tag: String,
}

impl PoolKeys {
    /// The keys of `pool`.
    pub fn of(pool: PoolKey) -> Self {
        let tag = format!("{{{}:{}}}", pool.workspace.simple(), pool.model.simple());
        Self {
            cursor: format!("rotor:{tag}:rot"),
            entries: format!("rotor:{tag}:ent"),
            windows: format!("rotor:{tag}:win"),
            tag,
        }
    }

    /// The binding of an affinity key (hash of the client's key).
    pub fn affinity(&self, key: u64) -> String {
        format!("rotor:{}:aff:{key:016x}", self.tag)
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

/// The minute window of a client (gateway API key), a hash with one field, [`CLIENT_FIELD`].
pub fn client_window(client: Uuid) -> String {
    format!("rotor:{{key:{}}}:win", client.simple())
}

/// The field of [`client_window`] (the scripts count windows in hash fields).
pub const CLIENT_FIELD: &str = "w";

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
        let tag = "{00000000000000000000000000000001:00000000000000000000000000000002}";
        assert_eq!(k.cursor, format!("rotor:{tag}:rot"));
        assert_eq!(
            k.affinity(0xab),
            format!("rotor:{tag}:aff:00000000000000ab")
        );
        let (w, c) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(parse_flagged(&flagged_member(w, c)), Some((w, c)));
        assert_eq!(parse_flagged("nope"), None);
    }
}
