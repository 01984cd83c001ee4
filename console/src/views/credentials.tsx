// The workspace's provider credentials, grouped per provider: add one from its provider's
// schema, edit it (secrets stay masked), validate it with the provider, delete it (confirmed
// in the page), and its health as words. Members who do not manage see the list only.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
import { Confirm } from "./confirm";
import type { Ctx } from "./context";
import { configOf, CredentialForm } from "./credential_form";
import { Done, Refusal } from "./notice";

type Credential = Schemas["CredentialView"];
type Provider = Schemas["ProviderView"];
type Checked = { valid: boolean; text: string };

/** What each validation error code means, in words. */
const REASONS: Record<string, string> = {
  unauthorized: "the provider refused the key (unauthorized)",
  forbidden: "the provider refused the key (forbidden)",
  rate_limited: "the provider is rate limiting it",
  unreachable: "the provider could not be reached",
  timeout: "the provider did not answer in time",
  blocked_address: "its address is not allowed by this instance",
  upstream_error: "the provider answered with an error",
};

/** The credential states of §14 in words. */
const STATES: Record<string, string> = {
  available: "Available",
  rejected: "Rejected",
  quota_exhausted: "Quota exhausted",
};

/** The credentials of the current workspace. */
export function Credentials({ ctx }: { ctx: Ctx }) {
  const ws = ctx.ws.id;
  const [credentials, setCredentials] = useState<Credential[] | null>(null);
  const [providers, setProviders] = useState<Provider[]>([]);
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [checked, setChecked] = useState<Record<string, Checked>>({});
  const [error, setError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function load() {
    const answer = await listAll((query) => api.GET("/api/v1/workspaces/{ws}/credentials", { params: { path: { ws }, query } }));
    if (answer.data) setCredentials(answer.data.data);
    else setError(messageOf(answer.error));
  }

  useEffect(() => {
    void load();
    void api.GET("/api/v1/providers").then((r) => r.data && setProviders(r.data.data));
  }, [ws]);

  async function validate(c: Credential) {
    setChecked({ ...checked, [c.id]: { valid: false, text: "Validating…" } });
    const answer = await api.POST("/api/v1/workspaces/{ws}/credentials/{id}/validate", {
      params: { path: { ws, id: c.id } },
    });
    const result: Checked = answer.data
      ? answer.data.valid
        ? { valid: true, text: "Valid: the provider accepted it." }
        : { valid: false, text: `Not valid: ${REASONS[answer.data.error ?? ""] ?? answer.data.error ?? "unknown reason"}.` }
      : { valid: false, text: `Not validated: ${messageOf(answer.error)}` };
    setChecked((all) => ({ ...all, [c.id]: result }));
    // A successful validation brings a rejected credential back: show its new health.
    await load();
  }

  async function remove(c: Credential) {
    setRefusal(null);
    const answer = await api.DELETE("/api/v1/workspaces/{ws}/credentials/{id}", { params: { path: { ws, id: c.id } } });
    setDeleting(null);
    if (answer.response.status !== 204) {
      const models = ((answer.error as Partial<Schemas["ErrorBody"]> | undefined)?.error?.details as { models?: string[] } | null)
        ?.models;
      return setRefusal(`${c.name}: ${messageOf(answer.error)}${models?.length ? ` (${models.join(", ")})` : ""}`);
    }
    setDone(`Deleted ${c.name}.`);
    await load();
  }

  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!credentials) return <p>Loading credentials…</p>;
  const named = new Map(providers.map((p) => [p.id, p]));
  const groups = [...new Set([...providers.map((p) => p.id), ...credentials.map((c) => c.provider)])]
    .map((id) => ({ id, name: named.get(id)?.name ?? id, list: credentials.filter((c) => c.provider === id) }))
    .filter((g) => g.list.length > 0);
  return (
    <section class="card" aria-labelledby="credentials-title">
      <div class="pane-head">
        <h2 id="credentials-title">Credentials</h2>
        <span class="spacer" />
        {ctx.canManage && !adding && providers.length > 0 && (
          <button type="button" onClick={() => setAdding(true)}>
            Add credential
          </button>
        )}
      </div>
      {!ctx.canManage && <p class="muted">Owners and admins add, change and validate credentials; you can see them.</p>}
      {adding && (
        <CredentialForm
          ws={ws}
          providers={providers}
          onCancel={() => setAdding(false)}
          onSaved={(c) => {
            setAdding(false);
            setDone(`Added ${c.name}.`);
            void load();
          }}
        />
      )}
      <Done text={done} />
      <Refusal text={refusal} />
      {groups.length === 0 && <p>No credentials yet.</p>}
      {groups.map((g) => (
        <section key={g.id} class="cred-group" aria-labelledby={`cred-group-${g.id}`} data-provider={g.id}>
          <h3 id={`cred-group-${g.id}`}>{g.name}</h3>
          <table class="models credentials">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Config</th>
                <th scope="col">Health</th>
                {ctx.canManage && (
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {g.list.map((c) => (
                <Row
                  key={c.id}
                  c={c}
                  ctx={ctx}
                  checked={checked[c.id]}
                  editing={editing === c.id}
                  deleting={deleting === c.id}
                  onEdit={() => setEditing(editing === c.id ? null : c.id)}
                  onValidate={() => void validate(c)}
                  onDelete={() => setDeleting(c.id)}
                  onKeep={() => setDeleting(null)}
                  onConfirm={() => void remove(c)}
                >
                  <CredentialForm
                    ws={ws}
                    providers={providers}
                    credential={c}
                    onCancel={() => setEditing(null)}
                    onSaved={(saved) => {
                      // The answer is the credential as stored: shown at once, with the message.
                      setCredentials((all) => all && all.map((x) => (x.id === saved.id ? saved : x)));
                      setEditing(null);
                      setDone(`Saved ${saved.name}.`);
                    }}
                  />
                </Row>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </section>
  );
}

interface RowProps {
  c: Credential;
  ctx: Ctx;
  checked: Checked | undefined;
  editing: boolean;
  deleting: boolean;
  onEdit: () => void;
  onValidate: () => void;
  onDelete: () => void;
  onKeep: () => void;
  onConfirm: () => void;
  /** The edit form, shown under the row while editing. */
  children: ComponentChildren;
}

/** One credential: its masked config, its health in words, its actions. */
function Row({ c, ctx, checked, editing, deleting, onEdit, onValidate, onDelete, onKeep, onConfirm, children }: RowProps) {
  const config = Object.entries(configOf(c));
  return (
    <>
      <tr data-credential={c.name}>
        <th scope="row">{c.name}</th>
        <td>
          <dl class="config">
            {config.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>
                  <code>{v}</code>
                </dd>
              </div>
            ))}
          </dl>
          <span class="muted help">Quota cooldown {c.quota_cooldown_seconds} s</span>
        </td>
        <td>
          <Health health={c.health} />
          {checked && (
            <p class={checked.valid ? "done" : "error"} role="status">
              {checked.text}
            </p>
          )}
        </td>
        {ctx.canManage && (
          <td class="actions">
            <div class="row-actions">
              <button type="button" class="secondary" onClick={onValidate}>
                Validate
              </button>
              <button type="button" class="secondary" aria-expanded={editing} onClick={onEdit}>
                Edit
              </button>
              <button type="button" class="secondary" onClick={onDelete}>
                Delete
              </button>
            </div>
            {deleting && (
              <Confirm
                label={`Delete ${c.name}?`}
                text={`Delete ${c.name}? Pools that use it lose it.`}
                action="Delete"
                onConfirm={onConfirm}
                onKeep={onKeep}
              />
            )}
          </td>
        )}
      </tr>
      {editing && (
        <tr class="edit-row">
          <td colSpan={ctx.canManage ? 4 : 3}>{children}</td>
        </tr>
      )}
    </>
  );
}

/** A credential's health as text: its state, since when, and the error that caused it. */
function Health({ health }: { health: Credential["health"] }) {
  const state = STATES[health.state] ?? health.state;
  const e = health.last_error;
  const error = e
    ? [e.status ? `HTTP ${e.status}` : null, e.code ?? null].filter(Boolean).join(", ") + ` at ${when(e.at)}`
    : null;
  return (
    <p class="health" data-state={health.state}>
      <span class="state">{state}</span> <span class="muted">since {when(health.since)}</span>
      {error && <span class="last-error">Last error: {error}</span>}
    </p>
  );
}

/** A timestamp in the reader's locale. */
function when(at: string): string {
  return new Date(at).toLocaleString();
}
