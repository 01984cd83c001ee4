//! The registry of every series of one server: handing series out to resolved routes, and
//! forgetting those of deleted models and credentials without losing a live route's counts.

use super::{Key, Series};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// What the registry held when a liveness check started: the keys to check, and the
/// generation that tells series handed out since (by a route resolved meanwhile) from the rest.
#[derive(Debug)]
pub struct Census {
    generation: u64,
    keys: Vec<Key>,
}

impl Census {
    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The distinct (workspace, model name) pairs, as two parallel arrays (for `unnest`).
    pub fn models(&self) -> (Vec<Uuid>, Vec<String>) {
        let pairs: HashSet<(Uuid, &str)> = self
            .keys
            .iter()
            .map(|k| (k.workspace, k.model.as_str()))
            .collect();
        pairs.into_iter().map(|(w, m)| (w, m.to_owned())).unzip()
    }

    /// The distinct (workspace, credential) pairs, as two parallel arrays (for `unnest`).
    pub fn credentials(&self) -> (Vec<Uuid>, Vec<Uuid>) {
        let pairs: HashSet<(Uuid, Uuid)> = self
            .keys
            .iter()
            .filter_map(|k| k.credential.map(|c| (k.workspace, c)))
            .collect();
        pairs.into_iter().unzip()
    }
}

/// Every series of one server, by labels.
#[derive(Debug, Default)]
pub struct Registry {
    pub(super) series: RwLock<HashMap<Key, Arc<Series>>>,
    /// Bumped by every [`Registry::census`].
    generation: AtomicU64,
}

impl Registry {
    /// The series of these labels: the existing one, or a new one at zero.
    pub fn series(&self, workspace: Uuid, model: &str, credential: Option<Uuid>) -> Arc<Series> {
        let key = Key {
            workspace,
            model: model.to_owned(),
            credential,
        };
        {
            let map = self.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = map.get(&key) {
                s.handed_out
                    .fetch_max(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
                return s.clone();
            }
        }
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.load(Ordering::SeqCst);
        let s = map
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Series::new(key, generation)));
        s.handed_out.fetch_max(generation, Ordering::SeqCst);
        s.clone()
    }

    /// The keys of `workspace` (or of all workspaces) to check against the database. Take it
    /// before querying: series handed out after it are kept by [`Registry::forget_dead`] even
    /// if the answer says they are dead (their route was resolved after the query may have
    /// looked), so a live route never holds a forgotten series; the next check settles them.
    pub fn census(&self, workspace: Option<Uuid>) -> Census {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst);
        let map = self.series.read().unwrap_or_else(|e| e.into_inner());
        let keys = map
            .keys()
            .filter(|k| workspace.is_none_or(|w| k.workspace == w))
            .cloned()
            .collect();
        Census { generation, keys }
    }

    /// Forgets the series of `census` whose model is not in `models` or whose credential is
    /// not in `credentials` (both as the database had them after the census was taken).
    /// Returns how many were forgotten.
    pub fn forget_dead(
        &self,
        census: &Census,
        models: &HashSet<(Uuid, String)>,
        credentials: &HashSet<(Uuid, Uuid)>,
    ) -> usize {
        let dead = |k: &Key| {
            !models.contains(&(k.workspace, k.model.clone()))
                || k.credential
                    .is_some_and(|c| !credentials.contains(&(k.workspace, c)))
        };
        let mut map = self.series.write().unwrap_or_else(|e| e.into_inner());
        let mut forgotten = 0;
        for key in census.keys.iter().filter(|k| dead(k)) {
            let stale = map
                .get(key)
                .is_some_and(|s| s.handed_out.load(Ordering::SeqCst) <= census.generation);
            if stale {
                map.remove(key);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// How many series there are.
    pub fn len(&self) -> usize {
        self.series.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::AnswerClass;

    fn rendered(r: &Registry) -> String {
        r.rendered()
    }

    type Alive = (HashSet<(Uuid, String)>, HashSet<(Uuid, Uuid)>);

    fn live(models: &[(Uuid, &str)], credentials: &[(Uuid, Uuid)]) -> Alive {
        (
            models.iter().map(|(w, m)| (*w, (*m).to_owned())).collect(),
            credentials.iter().copied().collect(),
        )
    }

    #[test]
    fn the_same_labels_get_the_same_series() {
        let r = Registry::default();
        let (ws, c) = (Uuid::new_v4(), Uuid::new_v4());
        let a = r.series(ws, "gpt", Some(c));
        a.request(AnswerClass::Ok);
        drop(a); // the route is dropped from a cache: the series stays
        let b = r.series(ws, "gpt", Some(c));
        b.request(AnswerClass::Ok);
        assert_eq!(b.requests[0].load(Ordering::Relaxed), 2);
        assert!(!Arc::ptr_eq(&b, &r.series(ws, "gpt", None)));
        assert!(!Arc::ptr_eq(&b, &r.series(ws, "other", Some(c))));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn dead_models_and_credentials_are_forgotten_live_ones_kept() {
        let r = Registry::default();
        let (ws, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
        let kept = r.series(ws, "kept", Some(c1));
        kept.request(AnswerClass::Ok);
        r.series(ws, "kept", None);
        r.series(ws, "kept", Some(c2)); // c2 deleted
        r.series(ws, "gone", Some(c1)); // model deleted
        r.series(ws, "gone", None);
        r.series(other, "kept", Some(c1)); // another workspace: not in this census

        let census = r.census(Some(ws));
        let (ws_ids, names) = census.models();
        assert!(ws_ids.iter().all(|w| *w == ws));
        let mut names = names;
        names.sort();
        assert_eq!(names, ["gone", "kept"]);
        let (_, mut creds) = census.credentials();
        creds.sort();
        let mut want = vec![c1, c2];
        want.sort();
        assert_eq!(creds, want);

        let (models, credentials) = live(&[(ws, "kept")], &[(ws, c1)]);
        assert_eq!(r.forget_dead(&census, &models, &credentials), 3);
        let text = rendered(&r);
        assert!(!text.contains("model=\"gone\""), "{text}");
        assert!(!text.contains(&c2.to_string()), "{text}");
        assert!(text.contains(&other.to_string()), "{text}");
        // The kept series is the one routes hold, its count intact.
        assert!(Arc::ptr_eq(&kept, &r.series(ws, "kept", Some(c1))));
        assert!(text.contains(&format!(
            "rotor_requests_total{{workspace_id=\"{ws}\",model=\"kept\",credential_id=\"{c1}\",outcome=\"ok\"}} 1\n"
        )));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_series_handed_out_after_the_census_is_not_forgotten() {
        let r = Registry::default();
        let ws = Uuid::new_v4();
        r.series(ws, "recreated", None);
        let census = r.census(None);
        // The model is recreated and its route resolved while the database is asked.
        let held = r.series(ws, "recreated", None);
        let (models, credentials) = live(&[], &[]);
        assert_eq!(r.forget_dead(&census, &models, &credentials), 0);
        assert!(Arc::ptr_eq(&held, &r.series(ws, "recreated", None)));
        // The next check, with nothing handed out meanwhile, settles it.
        drop(held);
        let census = r.census(None);
        assert_eq!(r.forget_dead(&census, &models, &credentials), 1);
        assert!(r.is_empty());
        assert_eq!(rendered(&r), "");
    }
}
