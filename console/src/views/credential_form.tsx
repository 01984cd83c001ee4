// The credential form generated from a provider's schema (`GET /providers`), for adding a
// credential and for editing one whose secrets the API shows masked (a masked secret left as
// is is not sent, so the stored value stays).
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import { Field } from "./auth";
import { wholeNumber } from "./numbers";
import { Refusal } from "./notice";

type Provider = Schemas["ProviderView"];
type Credential = Schemas["CredentialView"];
type SchemaField = Schemas["SchemaField"];

interface FormProps {
  ws: string;
  providers: Provider[];
  /** The credential to edit; a new one is added without it. */
  credential?: Credential;
  onCancel: () => void;
  onSaved: (credential: Credential) => void;
  /** The new-credential form's name and submit button, where "Add credential" is taken. */
  addLabel?: { form: string; submit: string };
}

/** A credential's config as the API shows it (text in clear, secrets masked). */
export function configOf(c: Credential): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.config)) {
    if (typeof v === "string") out[k] = v;
  }
  return out;
}


/** Add or edit a credential; server refusals are shown next to their fields. */
export function CredentialForm({ ws, providers, credential, onCancel, onSaved, addLabel }: FormProps) {
  const editing = credential !== undefined;
  const initial = credential ? configOf(credential) : {};
  const [providerId, setProviderId] = useState(credential?.provider ?? providers[0]?.id ?? "");
  const [name, setName] = useState(credential?.name ?? "");
  const [cooldown, setCooldown] = useState(credential ? String(credential.quota_cooldown_seconds) : "");
  const [values, setValues] = useState<Record<string, string>>(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const provider = providers.find((p) => p.id === providerId);
  const prefix = credential ? `cred-${credential.id}` : "cred-new";
  // The form opens with its first control focused, for the keyboard.
  const form = useRef<HTMLFormElement>(null);
  useLayoutEffect(() => form.current?.querySelector<HTMLElement>("select, input")?.focus(), []);

  function refuse(fields: Record<string, string>, message: string) {
    setErrors(fields);
    setError(message);
  }

  async function submit(e: Event) {
    e.preventDefault();
    if (!provider) return;
    setError(null);
    setErrors({});
    const seconds = wholeNumber(cooldown);
    if (Number.isNaN(seconds)) return refuse({ quota_cooldown_seconds: "must be a whole number" }, "Check the fields.");
    setBusy(true);
    const answer = credential
      ? await update(credential, provider.credential_schema, seconds)
      : await create(provider, seconds);
    setBusy(false);
    if (answer.data) return onSaved(answer.data);
    const fields = fieldErrors(answer.error);
    const code = (answer.error as Partial<Schemas["ErrorBody"]> | undefined)?.error?.code;
    // A duplicate name is a 409 without `details.fields`: it belongs next to the name.
    if (code === "credential_exists") fields.name = messageOf(answer.error);
    refuse(fields, messageOf(answer.error));
  }

  function create(p: Provider, seconds: number | null) {
    const config: Record<string, string> = {};
    for (const f of p.credential_schema) {
      const v = values[f.name]?.trim();
      if (v) config[f.name] = v;
    }
    return api.POST("/api/v1/workspaces/{ws}/credentials", {
      params: { path: { ws } },
      body: {
        provider: p.id,
        name: name.trim(),
        config,
        ...(seconds === null ? {} : { quota_cooldown_seconds: seconds }),
      },
    });
  }

  function update(c: Credential, schema: SchemaField[], seconds: number | null) {
    // Only what changed is sent: a masked secret left as is keeps the stored value, and an
    // untouched config is not a change (it would also put a rejected credential back in pools).
    const config: Record<string, string | null> = {};
    for (const f of schema) {
      const now = (values[f.name] ?? "").trim();
      if (now !== (initial[f.name] ?? "")) config[f.name] = now === "" ? null : now;
    }
    const body: Schemas["CredentialUpdate"] = {};
    if (name.trim() !== c.name) body.name = name.trim();
    if (seconds !== null && seconds !== c.quota_cooldown_seconds) body.quota_cooldown_seconds = seconds;
    if (Object.keys(config).length > 0) body.config = config;
    return api.PATCH("/api/v1/workspaces/{ws}/credentials/{id}", { params: { path: { ws, id: c.id } }, body });
  }

  return (
    <form ref={form} class="credential-form" onSubmit={submit} noValidate aria-label={editing ? `Edit ${credential.name}` : (addLabel?.form ?? "Add credential")}>
      <div class="grid">
        {editing ? (
          <p class="field">
            <span class="label">Provider</span>
            <span>{provider?.name ?? providerId}</span>
          </p>
        ) : (
          <div class="field">
            <label for={`${prefix}-provider`}>Provider</label>
            <select
              id={`${prefix}-provider`}
              value={providerId}
              aria-invalid={errors.provider ? true : undefined}
              onChange={(e) => {
                setProviderId((e.target as HTMLSelectElement).value);
                setValues({});
                setErrors({});
              }}
            >
              {providers.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
            {errors.provider && <p class="error">{errors.provider}</p>}
          </div>
        )}
        <Field id={`${prefix}-name`} label="Name" value={name} onInput={setName} error={errors.name} autoComplete="off" />
        {provider?.credential_schema.map((f) => (
          <SchemaInput
            key={`${provider.id}-${f.name}`}
            id={`${prefix}-${f.name}`}
            field={f}
            stored={editing ? initial[f.name] : undefined}
            value={values[f.name] ?? ""}
            onInput={(v) => setValues({ ...values, [f.name]: v })}
            error={errors[`config.${f.name}`] ?? errors[f.name]}
          />
        ))}
        <Field
          id={`${prefix}-cooldown`}
          label="Quota cooldown (seconds)"
          value={cooldown}
          onInput={setCooldown}
          error={errors.quota_cooldown_seconds}
          autoComplete="off"
        />
      </div>
      {!editing && <p class="muted help">Quota cooldown: 60 to 604800 seconds; empty for the default (3600).</p>}
      <Refusal text={error} />
      <div class="row">
        <button type="submit" disabled={busy}>
          {editing ? "Save" : (addLabel?.submit ?? "Add credential")}
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

interface SchemaInputProps {
  id: string;
  field: SchemaField;
  /** The value the API shows for it when editing (masked for a secret). */
  stored: string | undefined;
  value: string;
  onInput: (v: string) => void;
  error: string | undefined;
}

/** One field of a provider's schema: a password input for a secret, its description as help,
 * its default as the placeholder. */
function SchemaInput({ id, field, stored, value, onInput, error }: SchemaInputProps) {
  const secret = field.type === "secret";
  const keep = secret && stored !== undefined && stored !== "";
  const required = field.required && !field.default ? " (required)" : "";
  const help = keep
    ? `${field.description}${required}. Stored: ${stored}; leave it as is to keep it.`
    : `${field.description}${required}`;
  return (
    <div class="field">
      <label for={id}>{field.name}</label>
      <input
        id={id}
        type={secret ? "password" : "text"}
        // Not a login: no password manager fills the user's password in or saves a provider key.
        autoComplete={secret ? "new-password" : "off"}
        data-lpignore="true"
        data-1p-ignore
        spellcheck={false}
        value={value}
        placeholder={field.default ?? ""}
        aria-invalid={error ? true : undefined}
        aria-describedby={[`${id}-help`, error ? `${id}-error` : ""].filter(Boolean).join(" ")}
        // A masked secret is selected on focus, so typing replaces it instead of extending it.
        onFocus={(e) => keep && value === stored && (e.target as HTMLInputElement).select()}
        onInput={(e) => onInput((e.target as HTMLInputElement).value)}
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
}
