// The Load balancing pane edits a draft of the pool and sends it whole (PUT) on Save: this
// holds the draft's shape, its conversion to and from the API, and the two-credential rule.
import type { Schemas } from "../api/client";
import { wholeNumber } from "./numbers";

type View = Schemas["LoadBalancingView"];

/** One entry as the pane edits it; numbers stay text until Save parses them. */
export interface DraftEntry {
  /** A local key for rendering (the entry id once saved). */
  key: string;
  /** The stored entry's id, sent back so it keeps its id and live state. */
  id: string | null;
  /** null: the Default Config entry (the model's default credential). */
  credential_id: string | null;
  credential_name: string;
  enabled: boolean;
  weight: string;
  rpm: string;
  tpm: string;
  upstream_model: string;
}

/** The whole pool as the pane edits it. */
export interface Draft {
  enabled: boolean;
  entries: DraftEntry[];
  cooldown_seconds: string;
  max_attempts: string;
  max_wait_ms: string;
  affinity: Schemas["Affinity"];
  affinity_ttl_seconds: string;
}

let next = 0;
/** A key for an entry that is not saved yet. */
export function localKey(): string {
  next += 1;
  return `new-${next}`;
}

const text = (n: number | null | undefined): string => (n === null || n === undefined ? "" : String(n));

/** The draft of a stored pool. A pool never configured starts with its Default Config entry. */
export function draftOf(view: View): Draft {
  const entries: DraftEntry[] = view.entries.map((e) => ({
    key: e.id,
    id: e.id,
    credential_id: e.credential_id ?? null,
    credential_name: e.credential_name,
    enabled: e.enabled,
    weight: text(e.weight),
    rpm: text(e.rpm),
    tpm: text(e.tpm),
    upstream_model: e.upstream_model ?? "",
  }));
  if (entries.length === 0) entries.push(newEntry(null, "Default Config"));
  return {
    enabled: view.enabled,
    entries,
    cooldown_seconds: text(view.cooldown_seconds),
    max_attempts: text(view.max_attempts),
    max_wait_ms: text(view.max_wait_ms),
    affinity: view.affinity,
    affinity_ttl_seconds: text(view.affinity_ttl_seconds),
  };
}

/** A new, enabled entry of weight 1 for `credential` (null: Default Config). */
export function newEntry(credential: string | null, name: string): DraftEntry {
  return {
    key: localKey(),
    id: null,
    credential_id: credential,
    credential_name: name,
    enabled: true,
    weight: "1",
    rpm: "",
    tpm: "",
    upstream_model: "",
  };
}

/** How many different credentials the enabled entries serve from (Default Config counts as
 * the model's default credential, so it and that credential are one). */
export function distinctEnabled(draft: Draft, defaultCredential: string): number {
  const ids = new Set(draft.entries.filter((e) => e.enabled).map((e) => e.credential_id ?? defaultCredential));
  return ids.size;
}

/** A body for PUT, or the per-field problems found before sending (keys as the server's). */
export function bodyOf(draft: Draft): { body: Schemas["PutBody"] } | { fields: Record<string, string> } {
  const fields: Record<string, string> = {};
  const int = (field: string, value: string, optional: boolean): number | null => {
    const n = wholeNumber(value);
    if (n === null && !optional) fields[field] = "is required";
    if (Number.isNaN(n)) {
      fields[field] = "must be a whole number";
      return null;
    }
    return n;
  };
  const entries = draft.entries.map((e, i) => ({
    id: e.id,
    credential_id: e.credential_id,
    enabled: e.enabled,
    weight: int(`entries[${i}].weight`, e.weight, false),
    rpm: int(`entries[${i}].rpm`, e.rpm, true),
    tpm: int(`entries[${i}].tpm`, e.tpm, true),
    upstream_model: e.upstream_model.trim() === "" ? null : e.upstream_model.trim(),
  }));
  const body: Schemas["PutBody"] = {
    enabled: draft.enabled,
    entries,
    cooldown_seconds: int("cooldown_seconds", draft.cooldown_seconds, false),
    max_attempts: int("max_attempts", draft.max_attempts, false),
    max_wait_ms: int("max_wait_ms", draft.max_wait_ms, false),
    affinity: draft.affinity,
    affinity_ttl_seconds: int("affinity_ttl_seconds", draft.affinity_ttl_seconds, false),
  };
  return Object.keys(fields).length > 0 ? { fields } : { body };
}
