// An API key's limits (KeyLimits: rpm, tpm, monthly token and dollar budgets) as form fields,
// for creating a key and for changing its limits; empty means no limit.
import { useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import { Field } from "./auth";
import { decimalNumber, wholeNumber } from "./numbers";
import { Refusal } from "./notice";

type Key = Schemas["KeyView"];
type Limits = Schemas["KeyLimits"];
type LimitName = keyof Limits & ("rpm" | "tpm" | "monthly_token_budget" | "monthly_budget_usd");

/** The limits in the order the forms show them, with their labels. */
export const LIMITS: { name: LimitName; label: string; decimal?: boolean }[] = [
  { name: "rpm", label: "Requests per minute" },
  { name: "tpm", label: "Tokens per minute" },
  { name: "monthly_token_budget", label: "Tokens per month" },
  { name: "monthly_budget_usd", label: "US dollars per month", decimal: true },
];

type Typed = Record<LimitName, string>;

/** The typed form of a key's limits (empty for none). */
function typedOf(limits: Limits | undefined): Typed {
  const out = {} as Typed;
  for (const l of LIMITS) {
    const v = limits?.[l.name];
    out[l.name] = v === null || v === undefined ? "" : String(v);
  }
  return out;
}

/** Parses the typed limits: the values (null for none) or an error per field. */
function parse(typed: Typed): { limits: Record<LimitName, number | null>; errors: Record<string, string> } {
  const limits = {} as Record<LimitName, number | null>;
  const errors: Record<string, string> = {};
  for (const l of LIMITS) {
    const raw = typed[l.name].trim().replace(/[,_\s]/g, "");
    const value = l.decimal ? decimalNumber(raw) : wholeNumber(raw);
    if (Number.isNaN(value)) errors[l.name] = l.decimal ? "must be a number" : "must be a whole number";
    else limits[l.name] = value;
  }
  return { limits, errors };
}

/** A key's limits in words. */
export function limitsText(k: Limits): string {
  const n = (v: number) => v.toLocaleString("en-US");
  const parts = [
    k.rpm != null ? `${n(k.rpm)} requests/min` : null,
    k.tpm != null ? `${n(k.tpm)} tokens/min` : null,
    k.monthly_token_budget != null ? `${n(k.monthly_token_budget)} tokens/month` : null,
    k.monthly_budget_usd != null ? `$${k.monthly_budget_usd.toFixed(2)}/month` : null,
  ].filter(Boolean);
  return parts.length ? parts.join(" · ") : "No limits";
}

interface LimitFieldsProps {
  prefix: string;
  typed: Typed;
  errors: Record<string, string>;
  onInput: (typed: Typed) => void;
}

/** The four limit inputs. */
function LimitFields({ prefix, typed, errors, onInput }: LimitFieldsProps) {
  return (
    <>
      {LIMITS.map((l) => (
        <Field
          key={l.name}
          id={`${prefix}-${l.name}`}
          label={l.label}
          value={typed[l.name]}
          onInput={(v) => onInput({ ...typed, [l.name]: v })}
          error={errors[l.name]}
          autoComplete="off"
        />
      ))}
    </>
  );
}

/** Create a key with a name and limits; `onCreated` receives the answer holding the key. */
export function NewKeyForm({ ws, onCreated }: { ws: string; onCreated: (k: Schemas["CreatedKey"]) => void }) {
  const [name, setName] = useState("");
  const [models, setModels] = useState("");
  const [expires, setExpires] = useState("");
  const [typed, setTyped] = useState<Typed>(typedOf(undefined));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    const parsed = parse(typed);
    setErrors(parsed.errors);
    if (Object.keys(parsed.errors).length) return setError("Check the fields.");
    const body: Schemas["NewKey"] = { name: name.trim() };
    // Scope: the models it may call (comma-separated; empty: all) and the day it stops working
    // (at the end of that UTC day).
    const allowed = models
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean);
    if (allowed.length > 0) body.allowed_models = allowed;
    if (expires !== "") body.expires_at = `${expires}T23:59:59Z`;
    for (const l of LIMITS) {
      const v = parsed.limits[l.name];
      if (v !== null) body[l.name] = v;
    }
    setBusy(true);
    const answer = await api.POST("/api/v1/workspaces/{ws}/api-keys", { params: { path: { ws } }, body });
    setBusy(false);
    if (!answer.data) {
      setErrors(fieldErrors(answer.error));
      return setError(messageOf(answer.error));
    }
    setName("");
    setModels("");
    setExpires("");
    setTyped(typedOf(undefined));
    onCreated(answer.data);
  }

  return (
    <form class="key-form" onSubmit={submit} noValidate aria-label="Create API key">
      <h3>Create API key</h3>
      <div class="key-grid">
        <Field id="key-new-name" label="Name" value={name} onInput={setName} error={errors.name} autoComplete="off" />
        <LimitFields prefix="key-new" typed={typed} errors={errors} onInput={setTyped} />
        <Field
          id="key-new-models"
          label="Allowed models"
          value={models}
          onInput={setModels}
          error={errors.allowed_models}
          autoComplete="off"
        />
        <Field id="key-new-expires" label="Expires on (UTC)" type="date" value={expires} onInput={setExpires} error={errors.expires_at} />
      </div>
      <p class="muted help">
        Limits are optional: leave a field empty for no limit. Allowed models: names separated by commas, empty for
        every model of the workspace. Expires at the end of that day.
      </p>
      <Refusal text={error} />
      <div class="row">
        <button type="submit" disabled={busy}>
          Create key
        </button>
      </div>
    </form>
  );
}

/** Change a key's limits (PATCH: an emptied field removes that limit). */
export function LimitsForm({ ws, apiKey, onCancel, onSaved }: { ws: string; apiKey: Key; onCancel: () => void; onSaved: (k: Key) => void }) {
  const [typed, setTyped] = useState<Typed>(typedOf(apiKey));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    const parsed = parse(typed);
    setErrors(parsed.errors);
    if (Object.keys(parsed.errors).length) return setError("Check the fields.");
    setBusy(true);
    const answer = await api.PATCH("/api/v1/workspaces/{ws}/api-keys/{id}", {
      params: { path: { ws, id: apiKey.id } },
      body: parsed.limits,
    });
    setBusy(false);
    if (answer.data) return onSaved(answer.data);
    setErrors(fieldErrors(answer.error));
    setError(messageOf(answer.error));
  }

  return (
    <form class="key-form" onSubmit={submit} noValidate aria-label={`Limits of ${apiKey.name}`}>
      <div class="key-grid">
        <LimitFields prefix={`key-${apiKey.id}`} typed={typed} errors={errors} onInput={setTyped} />
      </div>
      <Refusal text={error} />
      <div class="row">
        <button type="submit" disabled={busy}>
          Save limits
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
