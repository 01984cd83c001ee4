// A model's **Config → Load balancing** pane, following Dify's procedure: the pool's entries
// (the Default Config entry first), Add credential, the switch (or the upgrade notice), the
// pool's settings, Save with the two-credential rule, live state and Reset cooldowns.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import type { Ctx } from "./context";
import { AddCredential } from "./lb_add";
import { bodyOf, distinctEnabled, draftOf, newEntry, type Draft } from "./lb_draft";
import { Entries } from "./lb_entries";
import { Settings } from "./lb_settings";

type Model = Schemas["ModelView"];
type View = Schemas["LoadBalancingView"];
type Status = Schemas["EntryStatus"];

/** How often the pane reads the entries' live state while it is open. */
const REFRESH_MS = 2000;

interface PaneProps {
  ctx: Ctx;
  model: Model;
  providers: Schemas["ProviderView"][];
  onClose: () => void;
  /** The pool changed (the model list refreshes its icons). */
  onSaved: () => void;
}

/** The Load balancing pane of `model`. */
export function LoadBalancingPane({ ctx, model, providers, onClose, onSaved }: PaneProps) {
  const ws = ctx.ws.id;
  const path = { ws, id: model.id };
  const [view, setView] = useState<View | null>(null);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [status, setStatus] = useState<{ by: Record<string, Status>; at: number }>({ by: {}, at: Date.now() });
  const [now, setNow] = useState(Date.now());
  const [credentials, setCredentials] = useState<Schemas["CredentialView"][]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<{ kind: "error" | "done"; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  const family = providers.find((p) => p.id === model.provider)?.family;
  const sameFamily = providers.filter((p) => p.family === family);
  const feature = ctx.ws.features.load_balancing;
  const readOnly = !ctx.canManage;

  function live(v: View) {
    const by: Record<string, Status> = {};
    for (const e of v.entries) by[e.id] = e.status;
    setStatus({ by, at: Date.now() });
  }

  async function load() {
    const [pool, creds] = await Promise.all([
      api.GET("/api/v1/workspaces/{ws}/models/{id}/load-balancing", { params: { path } }),
      api.GET("/api/v1/workspaces/{ws}/credentials", { params: { path: { ws }, query: { limit: 200 } } }),
    ]);
    if (!pool.data) return setMessage({ kind: "error", text: messageOf(pool.error) });
    setView(pool.data);
    setDraft(draftOf(pool.data));
    live(pool.data);
    if (creds.data) setCredentials(creds.data.data);
  }

  useEffect(() => {
    void load();
    heading.current?.focus();
    // Live state while the pane is open: only the entries' state, never the draft.
    const poll = setInterval(() => {
      void api.GET("/api/v1/workspaces/{ws}/models/{id}/load-balancing", { params: { path } }).then((r) => {
        if (r.data) live(r.data);
      });
    }, REFRESH_MS);
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      clearInterval(poll);
      clearInterval(tick);
    };
  }, [model.id]);

  const defaultName = credentials.find((c) => c.id === model.credential_id)?.name ?? "default credential";
  const edit = (change: Partial<Draft>) => {
    if (!draft) return;
    setDraft({ ...draft, ...change });
    setMessage(null);
  };

  async function save() {
    if (!draft || !view) return;
    setErrors({});
    setMessage(null);
    if (draft.enabled && distinctEnabled(draft, model.credential_id) < 2) {
      setMessage({
        kind: "error",
        text: "Enable at least two different credentials before turning load balancing on.",
      });
      return;
    }
    const parsed = bodyOf(draft);
    if ("fields" in parsed) {
      setErrors(parsed.fields);
      setMessage({ kind: "error", text: "Some fields need a change before saving." });
      return;
    }
    setBusy(true);
    const answer = await api.PUT("/api/v1/workspaces/{ws}/models/{id}/load-balancing", {
      params: { path, header: { "If-Match": `"${view.version}"` } },
      body: parsed.body,
    });
    setBusy(false);
    if (answer.data) {
      setView(answer.data);
      setDraft(draftOf(answer.data));
      live(answer.data);
      setMessage({ kind: "done", text: answer.data.effective ? "Saved. Load balancing is on." : "Saved." });
      onSaved();
      return;
    }
    const status = answer.response.status;
    if (status === 412) {
      setMessage({ kind: "error", text: "Someone else changed this pool meanwhile. Reload it to see their version." });
    } else {
      const fields = fieldErrors(answer.error);
      setErrors(fields);
      const beside = Object.keys(fields).some((f) => f !== "entries");
      setMessage({
        kind: "error",
        text: beside ? "Some fields need a change: see the messages next to them." : messageOf(answer.error),
      });
    }
  }

  async function resetCooldowns() {
    const answer = await api.DELETE("/api/v1/workspaces/{ws}/models/{id}/load-balancing/cooldowns", {
      params: { path },
    });
    if (answer.response.status !== 204) return setMessage({ kind: "error", text: messageOf(answer.error) });
    const pool = await api.GET("/api/v1/workspaces/{ws}/models/{id}/load-balancing", { params: { path } });
    if (pool.data) live(pool.data);
    setMessage({ kind: "done", text: "Every credential is back in the rotation." });
  }

  return (
    <section class="card pane" role="dialog" aria-modal="false" aria-label="Load balancing">
      <div class="pane-head">
        <h2 ref={heading} tabIndex={-1}>
          Load balancing · {model.name}
        </h2>
        <span class="spacer" />
        <button type="button" class="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      {!draft || !view ? (
        message ? (
          <p class="error" role="alert">
            {message.text}
          </p>
        ) : (
          <p>Loading the pool…</p>
        )
      ) : (
        <>
          <p class="muted">
            Requests to {model.name} go round the enabled credentials in proportion to their weight; one that hits a
            rate limit leaves the rotation for the cooldown and the request moves on to the next. Adding a
            credential more than once, or raising its weight, gives it a larger share.
          </p>
          {feature ? (
            <label class="toggle main-switch">
              <input
                type="checkbox"
                role="switch"
                aria-label="Load balancing"
                checked={draft.enabled}
                disabled={readOnly}
                onChange={(e) => edit({ enabled: (e.target as HTMLInputElement).checked })}
              />
              <span aria-hidden="true">Load balancing {draft.enabled ? "on" : "off"}</span>
            </label>
          ) : (
            <p class="upgrade" role="note">
              Load balancing is a paid feature. Upgrade this workspace to a paid plan, or install a license on
              this instance, to turn it on. You can still prepare the pool; it stays off until then.
            </p>
          )}
          {errors.entries && <p class="error">{errors.entries}</p>}
          <Entries
            entries={draft.entries}
            status={status.by}
            readAt={status.at}
            now={now}
            defaultName={defaultName}
            errors={errors}
            readOnly={readOnly}
            onChange={(i, e) => edit({ entries: draft.entries.map((x, j) => (j === i ? e : x)) })}
            onRemove={(i) => edit({ entries: draft.entries.filter((_, j) => j !== i) })}
          />
          {!readOnly && (
            <AddCredential
              ws={ws}
              providers={sameFamily}
              credentials={credentials}
              onPick={(c) => edit({ entries: [...draft.entries, newEntry(c.id, c.name)] })}
              onCreated={(c) => {
                setCredentials([...credentials, c]);
                edit({ entries: [...draft.entries, newEntry(c.id, c.name)] });
              }}
            />
          )}
          <Settings draft={draft} errors={errors} readOnly={readOnly} onChange={edit} />
          {message && (
            <p class={message.kind === "error" ? "error" : "done"} role={message.kind === "error" ? "alert" : "status"}>
              {message.text}
            </p>
          )}
          {!readOnly && (
            <div class="row">
              <button type="button" onClick={() => void save()} disabled={busy}>
                Save
              </button>
              <button type="button" class="secondary" onClick={() => void resetCooldowns()}>
                Reset cooldowns
              </button>
              {message?.text.startsWith("Someone else") && (
                <button type="button" class="secondary" onClick={() => void load()}>
                  Reload
                </button>
              )}
            </div>
          )}
        </>
      )}
    </section>
  );
}
