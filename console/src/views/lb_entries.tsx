// The pool's entries in the Load balancing pane: each with its switch, weight, limits and live
// state (a countdown to its return, in seconds, while it cools down).
import type { Schemas } from "../api/client";
import type { DraftEntry } from "./lb_draft";
import { wholeNumber } from "./numbers";

type Status = Schemas["EntryStatus"];

interface EntriesProps {
  entries: DraftEntry[];
  /** Live state by entry id, with the time it was read (ms since the epoch). */
  status: Record<string, Status>;
  readAt: number;
  now: number;
  /** The model's default credential's name, shown next to the Default Config entry. */
  defaultName: string;
  errors: Record<string, string>;
  readOnly: boolean;
  onChange: (index: number, entry: DraftEntry) => void;
  onRemove: (index: number) => void;
}

/** The entries as a list, in rotation order. */
export function Entries(p: EntriesProps) {
  const weight = (e: DraftEntry) => (e.enabled ? wholeNumber(e.weight) || 0 : 0);
  const total = p.entries.reduce((sum, e) => sum + weight(e), 0);
  return (
    <ol class="entries" aria-label="Credentials in the pool">
      {p.entries.map((e, i) => (
        <EntryRow key={e.key} index={i} entry={e} share={total > 0 ? Math.round((weight(e) * 100) / total) : 0} {...p} />
      ))}
    </ol>
  );
}

function EntryRow(p: EntriesProps & { index: number; entry: DraftEntry; share: number }) {
  const { entry: e, index: i, errors } = p;
  const set = (change: Partial<DraftEntry>) => p.onChange(i, { ...e, ...change });
  const field = (name: keyof DraftEntry, label: string, placeholder = "") => {
    const id = `lb-${e.key}-${name}`;
    const error = errors[`entries[${i}].${name}`];
    return (
      <div class="field compact">
        <label for={id}>{label}</label>
        <input
          id={id}
          inputMode={name === "upstream_model" ? "text" : "numeric"}
          value={e[name] as string}
          placeholder={placeholder}
          disabled={p.readOnly}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : undefined}
          onInput={(ev) => set({ [name]: (ev.target as HTMLInputElement).value })}
        />
        {error && (
          <p id={`${id}-error`} class="error">
            {error}
          </p>
        )}
      </div>
    );
  };
  const status = e.id ? p.status[e.id] : undefined;
  const idError = errors[`entries[${i}].credential_id`] ?? errors[`entries[${i}].id`];
  return (
    <li
      class="entry"
      data-entry={e.credential_name}
      data-state={status?.state ?? "unsaved"}
      aria-label={`Entry ${i + 1}: ${e.credential_name}`}
    >
      <div class="entry-head">
        <label class="toggle">
          <input
            type="checkbox"
            role="switch"
            checked={e.enabled}
            disabled={p.readOnly}
            onChange={(ev) => set({ enabled: (ev.target as HTMLInputElement).checked })}
          />
          <span>
            <strong>{e.credential_name}</strong>
            {e.credential_id === null && <span class="muted"> (the model's credential: {p.defaultName})</span>}
          </span>
        </label>
        <span class="muted share">{p.share} % of requests</span>
        <span class="spacer" />
        <StatusText status={status} saved={e.id !== null} readAt={p.readAt} now={p.now} />
        {!p.readOnly && (
          <button type="button" class="secondary" onClick={() => p.onRemove(i)} aria-label={`Remove ${e.credential_name}`}>
            Remove
          </button>
        )}
      </div>
      {idError && <p class="error">{idError}</p>}
      <div class="entry-fields">
        {field("weight", "Weight")}
        {field("rpm", "RPM limit", "none")}
        {field("tpm", "TPM limit", "none")}
        {field("upstream_model", "Upstream model", "the model's")}
      </div>
    </li>
  );
}

const STATES: Record<string, string> = {
  available: "Available",
  cooling_down: "Cooling down",
  at_capacity: "At capacity",
  quota_exhausted: "Quota exhausted",
  rejected: "Rejected by the provider",
};

/** Seconds left of a countdown read `remaining` seconds at `readAt`, as of `now`. */
function secondsLeft(remaining: number, readAt: number, now: number): number {
  return Math.max(0, Math.ceil(remaining - (now - readAt) / 1000));
}

/** An entry's live state as text: the state, why, when it returns, its last error. */
function StatusText({ status, saved, readAt, now }: { status: Status | undefined; saved: boolean; readAt: number; now: number }) {
  if (!saved) return <span class="status muted">Not saved yet</span>;
  if (!status) return <span class="status muted">…</span>;
  const left = secondsLeft(status.cooldown_remaining_s, readAt, now);
  const reason = status.reason ? ` (${status.reason.replace(/_/g, " ")})` : "";
  const err = status.last_error;
  return (
    // No live region: a countdown would be announced every second.
    <span class={`status state-${status.state}`}>
      <span class="state">
        {STATES[status.state] ?? status.state}
        {reason}
      </span>
      {status.state !== "available" && left > 0 && <span class="countdown"> · back in {left} s</span>}
      {status.rpm_used !== null && status.rpm_used !== undefined && <span class="muted"> · {status.rpm_used} req this minute</span>}
      {status.tpm_used !== null && status.tpm_used !== undefined && <span class="muted"> · {status.tpm_used} tokens this minute</span>}
      {err && (
        <span class="muted last-error">
          {" "}
          · last error {err.status ?? "no answer"}
          {err.code ? ` ${err.code}` : ""} at {new Date(err.at).toLocaleTimeString()}
        </span>
      )}
    </span>
  );
}
