//! `rotor_credential_state{workspace_id, credential_id, state}`: one gauge per credential the
//! registry knows (so a deleted credential leaves with its series), valued from the
//! lifecycle's credential-wide states at scrape time (the same on every replica with Redis).

use super::Registry;
use crate::lifecycle::CredentialLabel;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use uuid::Uuid;

/// Every credential-wide state, in the order the gauge lists them.
const STATES: [CredentialLabel; 3] = [
    CredentialLabel::Available,
    CredentialLabel::Rejected,
    CredentialLabel::QuotaExhausted,
];

impl Registry {
    /// Appends the credential-state gauges: `flagged` maps (workspace, credential) to a state
    /// other than available; every other known credential is available.
    pub fn render_states(
        &self,
        out: &mut String,
        flagged: &HashMap<(Uuid, Uuid), CredentialLabel>,
    ) {
        let known: BTreeSet<(Uuid, Uuid)> = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter_map(|k| k.credential.map(|c| (k.workspace, c)))
            .collect();
        if known.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP rotor_credential_state 1 for the state each credential is in (§14): available, rejected or quota_exhausted.\n# TYPE rotor_credential_state gauge"
        );
        for (workspace, credential) in known {
            let now = flagged
                .get(&(workspace, credential))
                .copied()
                .unwrap_or(CredentialLabel::Available);
            for state in STATES {
                let _ = writeln!(
                    out,
                    "rotor_credential_state{{workspace_id=\"{workspace}\",credential_id=\"{credential}\",state=\"{}\"}} {}",
                    state.as_str(),
                    u8::from(state == now)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_credential_has_one_state_set() {
        let r = Registry::default();
        let (ws, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        r.series(ws, "m", Some(a));
        r.series(ws, "m", Some(b));
        r.series(ws, "m", None);
        let flagged = HashMap::from([((ws, b), CredentialLabel::Rejected)]);
        let mut out = String::new();
        r.render_states(&mut out, &flagged);
        let line = |c: Uuid, s: &str, v: u8| {
            format!("rotor_credential_state{{workspace_id=\"{ws}\",credential_id=\"{c}\",state=\"{s}\"}} {v}\n")
        };
        for expected in [
            line(a, "available", 1),
            line(a, "rejected", 0),
            line(b, "available", 0),
            line(b, "rejected", 1),
            line(b, "quota_exhausted", 0),
        ] {
            assert!(out.contains(&expected), "{expected} in {out}");
        }
        assert_eq!(out.matches("rotor_credential_state{").count(), 6);
    }
}
