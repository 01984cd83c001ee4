// Dify's **Add credential** in the Load balancing pane: pick an existing credential of the
// model's API family (again, to raise its share), or add a new one in place from its
// provider's schema.
import { useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";

type Provider = Schemas["ProviderView"];
type Credential = Schemas["CredentialView"];

interface AddProps {
  ws: string;
  /** Providers whose credentials may serve this model (its API family). */
  providers: Provider[];
  credentials: Credential[];
  onPick: (credential: Credential) => void;
  /** A credential created in place (also added to the pool). */
  onCreated: (credential: Credential) => void;
}

/** The Add credential button and what it opens. */
export function AddCredential(p: AddProps) {
  const [open, setOpen] = useState<"closed" | "pick" | "new">("closed");
  const usable = new Set(p.providers.map((x) => x.id));
  const existing = p.credentials.filter((c) => usable.has(c.provider));
  return (
    <div class="add-credential">
      <button type="button" aria-expanded={open !== "closed"} onClick={() => setOpen(open === "closed" ? "pick" : "closed")}>
        Add credential
      </button>
      {open === "pick" && (
        <div class="picker" role="group" aria-label="Choose a credential">
          {existing.length === 0 && <p class="muted">No credential of this model's providers yet.</p>}
          <ul>
            {existing.map((c) => (
              <li key={c.id}>
                <button
                  type="button"
                  class="secondary"
                  onClick={() => {
                    p.onPick(c);
                    setOpen("closed");
                  }}
                >
                  {c.name}
                </button>{" "}
                <span class="muted">{c.provider}</span>
              </li>
            ))}
          </ul>
          <button type="button" class="link" onClick={() => setOpen("new")}>
            Add a new credential
          </button>
        </div>
      )}
      {open === "new" && (
        <NewCredential
          ws={p.ws}
          providers={p.providers}
          onCancel={() => setOpen("pick")}
          onCreated={(c) => {
            p.onCreated(c);
            setOpen("closed");
          }}
        />
      )}
    </div>
  );
}

/** A new credential from its provider's schema; secrets are typed into password fields and
 * never kept once sent. */
function NewCredential({
  ws,
  providers,
  onCancel,
  onCreated,
}: {
  ws: string;
  providers: Provider[];
  onCancel: () => void;
  onCreated: (c: Credential) => void;
}) {
  const [providerId, setProviderId] = useState(providers[0]?.id ?? "");
  const [name, setName] = useState("");
  const [values, setValues] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const provider = providers.find((x) => x.id === providerId);

  async function create(e: Event) {
    e.preventDefault();
    if (!provider) return;
    setBusy(true);
    setError(null);
    setErrors({});
    const config: Record<string, string> = {};
    for (const f of provider.credential_schema) {
      const v = values[f.name]?.trim();
      if (v) config[f.name] = v;
    }
    const answer = await api.POST("/api/v1/workspaces/{ws}/credentials", {
      params: { path: { ws } },
      // The schema's `config` is a free-form object (its fields come from /providers).
      body: { provider: provider.id, name: name.trim(), config: config as unknown as Schemas["NewCredential"]["config"] },
    });
    setBusy(false);
    if (answer.data) {
      setValues({});
      onCreated(answer.data);
    } else {
      setError(messageOf(answer.error));
      setErrors(fieldErrors(answer.error));
    }
  }

  return (
    <form class="new-credential" onSubmit={create} noValidate aria-label="New credential">
      <div class="field">
        <label for="lb-new-provider">Provider</label>
        <select id="lb-new-provider" value={providerId} onChange={(e) => setProviderId((e.target as HTMLSelectElement).value)}>
          {providers.map((x) => (
            <option key={x.id} value={x.id}>
              {x.name}
            </option>
          ))}
        </select>
      </div>
      <Input id="lb-new-name" label="Credential name" value={name} onInput={setName} error={errors.name} />
      {provider?.credential_schema.map((f) => (
        <Input
          key={`${provider.id}-${f.name}`}
          id={`lb-new-${f.name}`}
          label={f.name}
          help={f.description}
          secret={f.type === "secret"}
          placeholder={f.default ?? ""}
          value={values[f.name] ?? ""}
          onInput={(v) => setValues({ ...values, [f.name]: v })}
          error={errors[`config.${f.name}`] ?? errors[f.name]}
        />
      ))}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button type="submit" disabled={busy}>
          Add and use
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

interface InputProps {
  id: string;
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | undefined;
  help?: string;
  secret?: boolean;
  placeholder?: string;
}

function Input({ id, label, value, onInput, error, help, secret = false, placeholder = "" }: InputProps) {
  const described = [help ? `${id}-help` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        type={secret ? "password" : "text"}
        autoComplete="off"
        spellcheck={false}
        value={value}
        placeholder={placeholder}
        aria-invalid={error ? true : undefined}
        aria-describedby={described || undefined}
        onInput={(e) => onInput((e.target as HTMLInputElement).value)}
      />
      {help && (
        <p id={`${id}-help`} class="muted help">
          {help}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} class="error">
          {error}
        </p>
      )}
    </div>
  );
}
