//! The lifecycle half of the Redis backend: [`StateBackend`] on Redis, each method falling
//! back to the in-process state when Redis does not answer (and writes mirrored there).

use super::batch::{self, Joined, Turn};
use super::cache::States;
use super::clients::{Take, MAX_LEASE};
use super::codec::{
    decode_credential, decode_entry, decode_window, encode_credential, encode_entry,
};
use super::keys::{self, PoolKeys};
use super::{RedisState, CAS_TRIES, CREDENTIAL_TTL_MS, TTL_MS, WINDOW_TTL_MS};
use crate::lifecycle::MINUTE_MS;
use crate::lifecycle::{Change, CredentialRecord, CredentialState, EntryRecord, Trigger};
use crate::pick::{Book, Choice, Served};
use crate::state::{Flagged, PickRequest, PoolKey, Recorded, Report, StateBackend};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// What a compare-and-set ended with.
enum Cas<T> {
    /// Written (or nothing to write): the outcome of the value that is stored now.
    Done(T),
    /// Others kept changing the field: nothing written.
    GaveUp,
}

/// One pick's five numbers of the script's reply as a choice (`None`: not a valid reply).
fn decode_pick(reply: &[i64], n: usize, now: u64) -> Option<Choice> {
    let at = |i: usize| reply.get(i).copied().unwrap_or(0);
    let retry = || u64::try_from(at(1)).unwrap_or(1).max(1);
    let choice = match *reply.first()? {
        0 => {
            let index = usize::try_from(at(1)).ok()?;
            (index < n).then_some(())?;
            Choice::Serve(Served {
                index,
                trial: at(2) == 1,
                sticky_hit: at(3) == 1,
            })
        }
        1 => Choice::AllCooling {
            retry_after_ms: retry(),
        },
        2 => Choice::AllAtCapacity {
            retry_after_ms: retry(),
        },
        3 => Choice::AllRejected,
        5 => Choice::ClientFull {
            until_ms: u64::try_from(at(1)).unwrap_or(now),
        },
        _ => Choice::Exhausted,
    };
    Some(choice)
}

impl RedisState {
    /// The credential-wide states of `workspace` (this replica's copy, or read fresh).
    async fn states(&self, workspace: Uuid) -> Option<States> {
        let stale = match self.cache.get(workspace, Instant::now()) {
            Ok(states) => return Some(states),
            Err(stale) => stale,
        };
        let key = keys::credentials(workspace);
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(&key);
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(CREDENTIAL_TTL_MS)
            .ignore();
        let (all,): (HashMap<String, String>,) = self.piped("credentials", &pipe).await?;
        let states: HashMap<Uuid, CredentialState> = all
            .iter()
            .filter_map(|(c, v)| {
                let state = decode_credential(v).state;
                let c = Uuid::parse_str(c).ok()?;
                (state != CredentialState::Available).then_some((c, state))
            })
            .collect();
        let states = Arc::new(states);
        self.cache
            .fetched(workspace, stale, states.clone(), Instant::now());
        Some(states)
    }

    async fn pick_shared(&self, request: &PickRequest<'_>) -> Option<Choice> {
        let states = self.states(request.pool.workspace).await?;
        let now = request.now_ms;
        // A client with a lease left is admitted here; the others ask Redis (and for a lease).
        let asked = request.client.and_then(|c| {
            let tokens_full = self.fallback.clients().tokens_full(c, now);
            match self.leases.take(c, now, !tokens_full) {
                Take::Local => None,
                Take::Ask { back } => Some((c, back)),
            }
        });
        let (choice, granted) = if asked.is_none() && request.plain() {
            (self.pick_batched(request, &states).await?, 0)
        } else {
            let reply = self.pick_call(request, &states, asked, 1).await?;
            let at = |i: usize| reply.get(i).copied().unwrap_or(0);
            (decode_pick(&reply, request.candidates.len(), now)?, at(4))
        };
        if let Some((c, _)) = asked {
            let granted = u32::try_from(granted).unwrap_or(0);
            self.leases.granted(c, granted, now);
        }
        if let Some(c) = request
            .client
            .filter(|_| !matches!(choice, Choice::ClientFull { .. }))
        {
            // Counted here too, so a fallback keeps most of the minute's count.
            let counted = crate::state::ClientAdmit {
                limits: crate::lifecycle::Limits::default(),
                ..c
            };
            let _ = self.fallback.clients().admit_now(counted, now);
        }
        Some(choice)
    }

    /// A plain pick, batched with the others of its pool that wait ([`batch`]).
    async fn pick_batched(&self, request: &PickRequest<'_>, states: &States) -> Option<Choice> {
        let lane = (request.pool, request.signature);
        let baton = match batch::join(&self.lanes, lane) {
            Joined::Lead(baton) => baton,
            Joined::Wait(turn) => match turn.await.ok()? {
                Turn::Done(choice) => return choice,
                Turn::Lead(baton) => baton,
            },
        };
        let reply = self.pick_call(request, states, None, baton.picks()).await;
        let n = request.candidates.len();
        let choices = reply
            .unwrap_or_default()
            .chunks(5)
            .map(|r| decode_pick(r, n, request.now_ms))
            .collect::<Vec<_>>();
        baton.finish(choices.into_iter())
    }

    /// One call of the pick script: `picks` picks of `request` (more than one: a batch of
    /// plain ones), the client admitted when `asked`; the raw reply.
    async fn pick_call(
        &self,
        request: &PickRequest<'_>,
        states: &States,
        asked: Option<(crate::state::ClientAdmit, u32)>,
        picks: usize,
    ) -> Option<Vec<i64>> {
        let now = request.now_ms;
        let keys = PoolKeys::of(request.pool);
        let mut inv = self.scripts.pick.prepare_invoke();
        inv.key(&keys.cursor).key(&keys.entries).key(&keys.windows);
        let none = keys.none();
        match request.sticky {
            Some(s) => inv.key(keys.affinity(s.key)),
            None => inv.key(&none),
        };
        match asked {
            Some((c, _)) => inv.key(keys::client_window(c.workspace, c.key)),
            None => inv.key(&none),
        };
        // Numbers go as themselves (no string is formatted for them); an absent one as "".
        inv.arg(request.signature)
            .arg(now)
            .arg(request.candidates.len())
            .arg(request.trial_lease_ms.max(1))
            .arg(TTL_MS)
            .arg(WINDOW_TTL_MS);
        match request.sticky {
            Some(s) => inv.arg(s.ttl_ms),
            None => inv.arg(""),
        };
        let limits = |i: usize| request.limits.get(i).copied().unwrap_or_default();
        let any_limits = request.limits.iter().any(|l| l.any());
        let mut id = Uuid::encode_buffer();
        for (i, c) in request.candidates.iter().enumerate() {
            let tried = request.tried.contains(&c.credential);
            inv.arg(&*c.credential.simple().encode_lower(&mut id))
                .arg(c.weight.max(1))
                .arg(if tried { "1" } else { "0" });
            match states
                .get(&c.credential)
                .copied()
                .unwrap_or_default()
                .at(now)
            {
                CredentialState::Available => inv.arg("0"),
                CredentialState::Rejected { .. } => inv.arg("r"),
                CredentialState::QuotaExhausted { until_ms, .. } => inv.arg(until_ms),
            };
            let l = limits(i);
            match l.rpm {
                Some(rpm) => inv.arg(rpm),
                None => inv.arg(""),
            };
            match l.tpm {
                Some(tpm) => inv.arg(tpm),
                None => inv.arg(""),
            };
            // The window counts the credential when any of its entries here has limits.
            let counted = any_limits
                && request
                    .candidates
                    .iter()
                    .enumerate()
                    .any(|(j, o)| o.credential == c.credential && limits(j).any());
            inv.arg(if counted { "1" } else { "0" });
        }
        if let Some((c, back)) = asked {
            inv.arg("c")
                .arg(c.limits.rpm.unwrap_or(0))
                .arg(c.limits.tpm.unwrap_or(0))
                .arg(back)
                .arg(MAX_LEASE);
        } else if picks > 1 {
            inv.arg("k").arg(picks);
        }
        self.call("pick", inv).await
    }

    /// Rewrites `field` of hash `key` with what `apply` makes of its value (`None`: leave it),
    /// retrying when another replica wrote in between.
    async fn cas<T>(
        &self,
        what: &str,
        key: &str,
        field: &str,
        ttl_ms: u64,
        mut apply: impl FnMut(Option<&str>) -> (Option<String>, T),
    ) -> Option<Cas<T>> {
        for _ in 0..CAS_TRIES {
            let mut get = redis::cmd("HGET");
            get.arg(key).arg(field);
            let old: Option<String> = self.command(what, &get).await?;
            let (new, out) = apply(old.as_deref());
            let Some(new) = new.filter(|n| Some(n) != old.as_ref()) else {
                return Some(Cas::Done(out));
            };
            let mut inv = self.scripts.cas.key(key);
            inv.arg(field)
                .arg(if old.is_some() { "1" } else { "0" })
                .arg(old.as_deref().unwrap_or(""))
                .arg(new)
                .arg(ttl_ms);
            let written: i64 = self.call(what, inv).await?;
            if written == 1 {
                return Some(Cas::Done(out));
            }
        }
        tracing::warn!(
            operation = what,
            "record kept changing under a compare-and-set"
        );
        Some(Cas::GaveUp)
    }

    /// Applies `f` to a stored credential record (missing: left alone); the change it made.
    async fn update_credential(
        &self,
        workspace: Uuid,
        credential: Uuid,
        what: &str,
        create: bool,
        mut f: impl FnMut(&mut CredentialRecord) -> Option<Change>,
    ) -> Option<Option<Change>> {
        let key = keys::credentials(workspace);
        let field = credential.simple().to_string();
        let mut state = None;
        let done = self
            .cas(what, &key, &field, CREDENTIAL_TTL_MS, |old| {
                if old.is_none() && !create {
                    state = None;
                    return (None, None);
                }
                let mut r = old.map(decode_credential).unwrap_or_default();
                let change = f(&mut r);
                state = Some(r.state);
                (Some(encode_credential(&r)), change)
            })
            .await?;
        let Cas::Done(change) = done else {
            return Some(None);
        };
        if let Some(state) = state {
            self.cache.wrote(workspace, credential, state);
            let member = keys::flagged_member(workspace, credential);
            let mut cmd = redis::cmd(if state == CredentialState::Available {
                "SREM"
            } else {
                "SADD"
            });
            cmd.arg(keys::FLAGGED).arg(member);
            self.command::<i64>(what, &cmd).await?;
        }
        Some(change)
    }

    async fn record_shared(
        &self,
        pool: PoolKey,
        credential: Uuid,
        report: &Report<'_>,
    ) -> Option<Recorded> {
        let keys = PoolKeys::of(pool);
        let field = credential.simple().to_string();
        let entry = self
            .cas("record", &keys.entries, &field, TTL_MS, |old| {
                let mut r = old.map(decode_entry).unwrap_or_default();
                let cooled = r.record(report.answer, report.cooldown_seconds, report.now_ms);
                (Some(encode_entry(&r)), cooled)
            })
            .await?;
        let cooled = match entry {
            Cas::Done(cooled) => cooled,
            // Which cooldown an answer calls for depends on the answer alone.
            Cas::GaveUp => {
                EntryRecord::default().record(report.answer, report.cooldown_seconds, report.now_ms)
            }
        };
        let change = match report.answer.trigger {
            Trigger::Rejected | Trigger::QuotaExhausted => {
                self.update_credential(pool.workspace, credential, "record", true, |r| {
                    r.record(report.answer, report.quota_cooldown_seconds, report.now_ms)
                })
                .await?
            }
            _ => None,
        };
        Some(Recorded { cooled, change })
    }

    async fn book_shared(&self, pool: PoolKey) -> Option<Book> {
        let keys = PoolKeys::of(pool);
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(&keys.entries);
        pipe.cmd("HGETALL").arg(&keys.windows);
        let (entries, windows): (HashMap<String, String>, HashMap<String, String>) =
            self.piped("book", &pipe).await?;
        let mut book = Book::default();
        for (c, v) in &entries {
            if let Ok(c) = Uuid::parse_str(c) {
                *book.entry(c) = decode_entry(v);
            }
        }
        for (c, v) in &windows {
            if let Ok(c) = Uuid::parse_str(c) {
                book.entry(c).window = decode_window(v);
            }
        }
        Some(book)
    }

    async fn credentials_shared(
        &self,
        workspace: Uuid,
        credentials: &[Uuid],
    ) -> Option<Vec<(Uuid, CredentialRecord)>> {
        if credentials.is_empty() {
            return Some(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(keys::credentials(workspace));
        for c in credentials {
            cmd.arg(c.simple().to_string());
        }
        let values: Vec<Option<String>> = self.command("credentials", &cmd).await?;
        Some(
            credentials
                .iter()
                .zip(values)
                .filter_map(|(c, v)| v.map(|v| (*c, decode_credential(&v))))
                .collect(),
        )
    }

    async fn reset_shared(
        &self,
        pool: PoolKey,
        credentials: &[Uuid],
        now_ms: u64,
    ) -> Option<Vec<Uuid>> {
        let keys = PoolKeys::of(pool);
        let mut all = redis::cmd("HKEYS");
        all.arg(&keys.entries);
        let fields: Vec<String> = self.command("reset", &all).await?;
        for field in fields {
            self.cas("reset", &keys.entries, &field, TTL_MS, |old| {
                let new = old.map(|v| {
                    let mut r = decode_entry(v);
                    r.reset();
                    encode_entry(&r)
                });
                (new, ())
            })
            .await?;
        }
        let mut del = redis::cmd("DEL");
        del.arg(&keys.windows);
        self.command::<i64>("reset", &del).await?;
        let mut recovered = Vec::new();
        for c in credentials {
            let change = self
                .update_credential(pool.workspace, *c, "reset", false, |r| r.reset(now_ms))
                .await?;
            if change.is_some() {
                recovered.push(*c);
            }
        }
        Some(recovered)
    }

    async fn flagged_shared(&self) -> Option<Vec<Flagged>> {
        let mut members = redis::cmd("SMEMBERS");
        members.arg(keys::FLAGGED);
        let members: Vec<String> = self.command("flagged", &members).await?;
        let mut by_workspace: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (w, c) in members.iter().filter_map(|m| keys::parse_flagged(m)) {
            by_workspace.entry(w).or_default().push(c);
        }
        let mut out = Vec::new();
        for (workspace, credentials) in by_workspace {
            let records = self.credentials_shared(workspace, &credentials).await?;
            out.extend(
                records
                    .into_iter()
                    .filter(|(_, r)| r.state != CredentialState::Available)
                    .map(|(credential, record)| Flagged {
                        workspace,
                        credential,
                        record,
                    }),
            );
        }
        Some(out)
    }
}

impl StateBackend for RedisState {
    async fn pick(&self, request: PickRequest<'_>) -> Choice {
        match self.pick_shared(&request).await {
            Some(choice) => choice,
            None => self.fallback.pick(request).await,
        }
    }

    async fn record(&self, pool: PoolKey, credential: Uuid, report: Report<'_>) -> Recorded {
        let local = self.fallback.record(pool, credential, report).await;
        self.record_shared(pool, credential, &report)
            .await
            .unwrap_or(local)
    }

    async fn count_tokens(&self, pool: PoolKey, credential: Uuid, tokens: u64, now_ms: u64) {
        self.fallback
            .count_tokens(pool, credential, tokens, now_ms)
            .await;
        let keys = PoolKeys::of(pool);
        let mut inv = self.scripts.tokens.key(&keys.windows);
        inv.arg(credential.simple().to_string())
            .arg(now_ms / MINUTE_MS)
            .arg(tokens)
            .arg(WINDOW_TTL_MS);
        let _ = self.call::<i64>("count_tokens", inv).await;
    }

    async fn book(&self, pool: PoolKey) -> Book {
        match self.book_shared(pool).await {
            Some(book) => book,
            None => self.fallback.book(pool).await,
        }
    }

    async fn credentials(
        &self,
        workspace: Uuid,
        credentials: &[Uuid],
    ) -> Vec<(Uuid, CredentialRecord)> {
        match self.credentials_shared(workspace, credentials).await {
            Some(records) => records,
            None => self.fallback.credentials(workspace, credentials).await,
        }
    }

    async fn reset(&self, pool: PoolKey, credentials: &[Uuid], now_ms: u64) -> Vec<Uuid> {
        let local = self.fallback.reset(pool, credentials, now_ms).await;
        self.reset_shared(pool, credentials, now_ms)
            .await
            .unwrap_or(local)
    }

    async fn recover(&self, workspace: Uuid, credential: Uuid, now_ms: u64) -> Option<Change> {
        let local = self.fallback.recover(workspace, credential, now_ms).await;
        self.update_credential(workspace, credential, "recover", false, |r| {
            r.recover(now_ms)
        })
        .await
        .unwrap_or(local)
    }

    async fn flagged(&self) -> Vec<Flagged> {
        match self.flagged_shared().await {
            Some(flagged) => flagged,
            None => self.fallback.flagged().await,
        }
    }

    async fn lead(&self, name: &str, ttl_ms: u64) -> bool {
        let key = keys::lock(name);
        let mut inv = self.scripts.lead.key(&key);
        inv.arg(&self.id).arg(ttl_ms.max(1));
        match self.call::<i64>("lead", inv).await {
            Some(held) => held == 1,
            None => self.fallback.lead(name, ttl_ms).await,
        }
    }
}
