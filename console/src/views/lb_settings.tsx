// The pool's settings in the Load balancing pane: how long a rate-limited credential sits out,
// how many credentials a request tries, how long it may wait, and session affinity.
import type { Draft } from "./lb_draft";

interface SettingsProps {
  draft: Draft;
  errors: Record<string, string>;
  readOnly: boolean;
  onChange: (change: Partial<Draft>) => void;
}

type NumberKey = "cooldown_seconds" | "max_attempts" | "max_wait_ms" | "affinity_ttl_seconds";

const NUMBERS: { key: NumberKey; label: string; help: string }[] = [
  { key: "cooldown_seconds", label: "Cooldown (seconds)", help: "How long a rate-limited credential leaves the rotation, 1 to 3600." },
  { key: "max_attempts", label: "Max attempts", help: "Most credentials one request tries before it fails, 1 to 10." },
  { key: "max_wait_ms", label: "Max wait (ms)", help: "How long a request may wait for a credential to come back instead of a 429, 0 to 60000." },
  { key: "affinity_ttl_seconds", label: "Affinity TTL (seconds)", help: "How long a session keeps its credential after its last request, 30 to 86400." },
];

/** The pool's settings, each with its server error next to it. */
export function Settings({ draft, errors, readOnly, onChange }: SettingsProps) {
  return (
    <fieldset class="settings" disabled={readOnly}>
      <legend>Pool settings</legend>
      {NUMBERS.map(({ key, label, help }) => {
        const id = `lb-${key}`;
        const error = errors[key];
        return (
          <div class="field compact" key={key}>
            <label for={id}>{label}</label>
            <input
              id={id}
              inputMode="numeric"
              value={draft[key]}
              aria-invalid={error ? true : undefined}
              aria-describedby={`${id}-help${error ? ` ${id}-error` : ""}`}
              onInput={(e) => onChange({ [key]: (e.target as HTMLInputElement).value })}
            />
            <p id={`${id}-help`} class="muted help">
              {help}
            </p>
            {error && (
              <p id={`${id}-error`} class="error">
                {error}
              </p>
            )}
          </div>
        );
      })}
      <div class="field compact">
        <label for="lb-affinity">Affinity</label>
        <select
          id="lb-affinity"
          value={draft.affinity}
          aria-invalid={errors.affinity ? true : undefined}
          aria-describedby={errors.affinity ? "lb-affinity-error" : undefined}
          onChange={(e) => onChange({ affinity: (e.target as HTMLSelectElement).value as Draft["affinity"] })}
        >
          <option value="none">None: every request goes round the pool</option>
          <option value="session">Session: a session sticks to one credential (warm prompt caches)</option>
        </select>
        {errors.affinity && (
          <p id="lb-affinity-error" class="error">
            {errors.affinity}
          </p>
        )}
      </div>
    </fieldset>
  );
}
