// The workspace's gateway API keys: the list with their limits, creating one (its key shown
// once, in memory only, with a Copy button), changing its limits and revoking it (confirmed
// in the page).
import { Fragment } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
import { LimitsForm, limitsText, NewKeyForm } from "./api_key_form";
import { Confirm } from "./confirm";
import type { Ctx } from "./context";
import { Done, Refusal } from "./notice";

type Key = Schemas["KeyView"];

/** The API keys of the current workspace. */
export function ApiKeys({ ctx }: { ctx: Ctx }) {
  const ws = ctx.ws.id;
  const [keys, setKeys] = useState<Key[] | null>(null);
  // The created key lives in this state only: never stored, gone once dismissed or unmounted.
  const [created, setCreated] = useState<Schemas["CreatedKey"] | null>(null);
  // Revoking deletes a key; the ones revoked on this visit stay listed as revoked.
  const [revoked, setRevoked] = useState<Key[]>([]);
  const [editing, setEditing] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  async function load() {
    const answer = await listAll((query) => api.GET("/api/v1/workspaces/{ws}/api-keys", { params: { path: { ws }, query } }));
    if (answer.data) setKeys(answer.data.data);
    else setError(messageOf(answer.error));
  }

  useEffect(() => {
    void load();
  }, [ws]);

  async function revoke(k: Key) {
    setRefusal(null);
    const answer = await api.DELETE("/api/v1/workspaces/{ws}/api-keys/{id}", { params: { path: { ws, id: k.id } } });
    setRevoking(null);
    if (answer.response.status !== 204) return setRefusal(`${k.name}: ${messageOf(answer.error)}`);
    if (created?.id === k.id) setCreated(null);
    setRevoked((r) => [...r, k]);
    setDone(`Revoked ${k.name}: it no longer works.`);
    await load();
  }

  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!keys) return <p>Loading API keys…</p>;
  const rows = [...keys.map((k) => ({ k, gone: false })), ...revoked.filter((r) => !keys.some((k) => k.id === r.id)).map((k) => ({ k, gone: true }))];
  const columns = ctx.canManage ? 7 : 6;
  return (
    <section class="card" aria-labelledby="api-keys-title">
      <h2 id="api-keys-title">API keys</h2>
      <p class="muted">
        Applications call the gateway (<code>/v1</code>) with <code>Authorization: Bearer rk-…</code>.
      </p>
      {created && (
        <CreatedKey
          created={created}
          onDismiss={() => {
            setCreated(null);
            document.getElementById("key-new-name")?.focus();
          }}
        />
      )}
      {ctx.canManage && (
        <NewKeyForm
          ws={ws}
          onCreated={(k) => {
            setDone(null);
            setCreated(k);
            void load();
          }}
        />
      )}
      <Done text={done} />
      <Refusal text={refusal} />
      {rows.length === 0 ? (
        <p>No API keys yet.</p>
      ) : (
        <table class="models api-keys">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Key</th>
              <th scope="col">Created</th>
              <th scope="col">Limits</th>
              <th scope="col">This month</th>
              <th scope="col">Status</th>
              {ctx.canManage && (
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {rows.map(({ k, gone }) => (
              <Fragment key={k.id}>
                <tr data-key={k.name} data-status={gone ? "revoked" : status(k).toLowerCase()}>
                  <th scope="row">{k.name}</th>
                  <td>
                    <code>{k.prefix}…</code>
                  </td>
                  <td class="nowrap">{new Date(k.created_at).toLocaleDateString()}</td>
                  <td class="limits">{limitsText(k)}</td>
                  <td class="usage">{usageText(k)}</td>
                  <td>
                    {gone ? "Revoked" : status(k)}
                    {!gone && scopeText(k) && <span class="muted help scope">{scopeText(k)}</span>}
                  </td>
                  {ctx.canManage && (
                    <td class="actions">
                      {!gone && (
                        <div class="row-actions">
                          <button type="button" class="secondary" aria-expanded={editing === k.id} onClick={() => setEditing(editing === k.id ? null : k.id)}>
                            Edit limits
                          </button>
                          <button type="button" class="secondary" onClick={() => setRevoking(k.id)}>
                            Revoke
                          </button>
                        </div>
                      )}
                      {revoking === k.id && (
                        <Confirm
                          label={`Revoke ${k.name}?`}
                          text={`Revoke ${k.name}? Applications using it stop working at once.`}
                          action="Revoke"
                          onConfirm={() => void revoke(k)}
                          onKeep={() => setRevoking(null)}
                        />
                      )}
                    </td>
                  )}
                </tr>
                {editing === k.id && !gone && (
                  <tr class="edit-row">
                    <td colSpan={columns}>
                      <LimitsForm
                        ws={ws}
                        apiKey={k}
                        onCancel={() => setEditing(null)}
                        onSaved={(saved) => {
                          // The answer is the key as stored: shown at once, with the message.
                          setKeys((all) => all && all.map((x) => (x.id === saved.id ? saved : x)));
                          setEditing(null);
                          setDone(`Saved the limits of ${saved.name}.`);
                        }}
                      />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      {revoked.length > 0 && <p class="muted help">Revoked keys are deleted: they leave this list when you come back.</p>}
    </section>
  );
}

/** The key just created, shown this once with a Copy button. */
function CreatedKey({ created, onDismiss }: { created: Schemas["CreatedKey"]; onDismiss: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  // The panel opens with Copy focused, so the keyboard lands where the key is.
  const copyButton = useRef<HTMLButtonElement>(null);
  useLayoutEffect(() => copyButton.current?.focus(), []);
  async function copy() {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied("Copied to the clipboard.");
    } catch {
      setCopied("Could not copy: select the key and copy it.");
    }
  }
  return (
    <div class="created-key" role="region" aria-labelledby="created-key-title">
      <h3 id="created-key-title">New API key {created.name}</h3>
      <p>
        <strong>Copy it now: it will not be shown again.</strong> Rotor keeps only its hash.
      </p>
      <div class="row">
        <code class="secret-once" id="created-key">
          {created.key}
        </code>
        <button type="button" ref={copyButton} onClick={() => void copy()}>
          Copy
        </button>
        <button type="button" class="secondary" onClick={onDismiss}>
          Done
        </button>
      </div>
      {copied && (
        <p class="muted" role="status">
          {copied}
        </p>
      )}
    </div>
  );
}

/** Whether a key works now. */
function status(k: Key): string {
  return k.expires_at && new Date(k.expires_at).getTime() <= Date.now() ? "Expired" : "Active";
}

/** When and for which models a key works, beyond its status. */
function scopeText(k: Key): string | null {
  const parts = [
    k.expires_at ? `until ${new Date(k.expires_at).toLocaleString()}` : null,
    k.allowed_models ? `models: ${k.allowed_models.join(", ")}` : null,
  ].filter(Boolean);
  return parts.length ? parts.join("; ") : null;
}

/** What a key used this month, in words. */
function usageText(k: Key): string {
  const u = k.usage_this_month;
  const tokens = u.input_tokens + u.output_tokens;
  const cost = u.cost_usd != null ? `, $${u.cost_usd.toFixed(2)}` : "";
  return `${u.requests.toLocaleString("en-US")} requests, ${tokens.toLocaleString("en-US")} tokens${cost}`;
}
