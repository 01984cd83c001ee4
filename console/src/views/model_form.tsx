// Adding a model from the console, so the whole procedure (credential, model, pool) needs no
// curl: a provider, the name clients send, the provider's name for it, its default credential
// and optional prices.
import { useEffect, useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
import { Field } from "./auth";
import { decimalNumber } from "./numbers";
import { Refusal } from "./notice";

type ModelType = Schemas["ModelType"];

const TYPES: ModelType[] = ["llm", "text-embedding", "rerank", "speech2text", "tts", "moderation", "image"];

interface FormProps {
  ws: string;
  providers: Schemas["ProviderView"][];
  onCreated: () => void;
  onCancel: () => void;
}

/** The Add model form. */
export function ModelForm({ ws, providers, onCreated, onCancel }: FormProps) {
  const [credentials, setCredentials] = useState<Schemas["CredentialView"][]>([]);
  const [provider, setProvider] = useState("");
  const [name, setName] = useState("");
  const [upstream, setUpstream] = useState("");
  const [type, setType] = useState<ModelType>("llm");
  const [credential, setCredential] = useState("");
  const [input, setInput] = useState("");
  const [output, setOutput] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void listAll((query) => api.GET("/api/v1/workspaces/{ws}/credentials", { params: { path: { ws }, query } }))
      .then((r) => {
        if (!r.data) return setError(messageOf(r.error));
        setCredentials(r.data.data);
        const first = r.data.data[0];
        if (first) {
          setProvider(first.provider);
          setCredential(first.id);
        }
      });
  }, [ws]);

  // Only providers with a credential can have a model (it needs a default credential).
  const withCredentials = providers.filter((p) => credentials.some((c) => c.provider === p.id));
  const ofProvider = credentials.filter((c) => c.provider === provider);

  async function submit(e: Event) {
    e.preventDefault();
    const price = decimalNumber;
    const bad: Record<string, string> = {};
    if (Number.isNaN(price(input))) bad.input_usd_per_mtok = "must be a number";
    if (Number.isNaN(price(output))) bad.output_usd_per_mtok = "must be a number";
    setErrors(bad);
    setError(null);
    if (Object.keys(bad).length > 0) return;
    setBusy(true);
    const answer = await api.POST("/api/v1/workspaces/{ws}/models", {
      params: { path: { ws } },
      body: {
        provider,
        name: name.trim(),
        upstream_model: upstream.trim() === "" ? null : upstream.trim(),
        model_type: type,
        credential_id: credential,
        input_usd_per_mtok: price(input),
        output_usd_per_mtok: price(output),
      },
    });
    setBusy(false);
    if (answer.data) return onCreated();
    setError(messageOf(answer.error));
    setErrors(fieldErrors(answer.error));
  }

  if (credentials.length === 0 && !error)
    return <p class="muted">Add a credential first (Credentials): a model needs a default credential.</p>;
  return (
    <form class="card model-form" onSubmit={submit} noValidate aria-label="Add model">
      <h3>Add model</h3>
      <div class="grid">
        <div class="field">
          <label for="model-provider">Provider</label>
          <select
            id="model-provider"
            value={provider}
            onChange={(e) => {
              const p = (e.target as HTMLSelectElement).value;
              setProvider(p);
              setCredential(credentials.find((c) => c.provider === p)?.id ?? "");
            }}
          >
            {withCredentials.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
        <Field id="model-name" label="Name clients send" value={name} onInput={setName} error={errors.name} />
        <Field id="model-upstream" label="Upstream model (default: the same)" value={upstream} onInput={setUpstream} error={errors.upstream_model} />
        <div class="field">
          <label for="model-type">Type</label>
          <select id="model-type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value as ModelType)}>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="model-credential">Default credential</label>
          <select
            id="model-credential"
            value={credential}
            aria-invalid={errors.credential_id ? true : undefined}
            aria-describedby={errors.credential_id ? "model-credential-error" : undefined}
            onChange={(e) => setCredential((e.target as HTMLSelectElement).value)}
          >
            {ofProvider.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
          {errors.credential_id && (
            <p id="model-credential-error" class="error">
              {errors.credential_id}
            </p>
          )}
        </div>
        <Field id="model-input-price" label="Input price (USD per million tokens)" value={input} onInput={setInput} error={errors.input_usd_per_mtok} />
        <Field id="model-output-price" label="Output price (USD per million tokens)" value={output} onInput={setOutput} error={errors.output_usd_per_mtok} />
      </div>
      <Refusal text={error} />
      <div class="row">
        <button type="submit" disabled={busy}>
          Add model
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
