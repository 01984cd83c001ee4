// A model's **Config → Load balancing** pane, following Dify's procedure: the pool's entries
// (the Default Config entry first), Add credential, the switch (or the upgrade notice), the
// pool's settings, Save with the two-credential rule, live state and Reset cooldowns.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
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
  const [message, setMessage] = useState<{ kind: "error" | "conflict" | "done"; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  // Bumped by every read or write the user starts: a poll sent before one of them is stale.
  const generation = useRef(0);

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
    generation.current += 1;
    const [pool, creds] = await Promise.all([
      api.GET("/api/v1/workspaces/{ws}/models/{id}/load-balancing", { params: { path } }),
      listAll((query) => api.GET("/api/v1/workspaces/{ws}/credentials", { params: { path: { ws }, query } })),
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
    // Live state while the pane is open: only the entries' state, never the draft. One read at
    // a time, none while the tab is hidden, and an answer overtaken by a save or reset is dropped.
    let stopped = false;
    let timer = 0;
    const poll = async () => {
      if (!document.hidden) {
        const sent = generation.current;
        const r = await api.GET("/api/v1/workspaces/{ws}/models/{id}/load-balancing", { params: { path } });
        if (r.data && sent === generation.current && !stopped) live(r.data);
      }
      if (!stopped) timer = window.setTimeout(() => void poll(), REFRESH_MS);
    };
    timer = window.setTimeout(() => void poll(), REFRESH_MS);
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(tick);
    };
  }, [model.id]);

  const defaultName = credentials.find((c) => c.id === model.credential_id)?.name ?? "default credential";
  // Changes apply to the draft as it is then (an in-place credential arrives after edits).
  const edit = (change: Partial<Draft> | ((d: Draft) => Partial<Draft>)) => {
    setDraft((d) => d && { ...d, ...(typeof change === "function" ? change(d) : change) });
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
    generation.current += 1;
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
      setMessage({
        kind: "conflict",
        text: "Someone else changed this pool meanwhile. Reload it to see their version (your changes here are dropped).",
      });
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
    generation.current += 1;
    const answer = await api.DELETE("/api/v1/workspaces/{ws}/models/{id}/load-balancing/cooldowns", {
      params: { path },
    });
    if (answer.response.status !== 204) return setMessage({ kind: "error", text: messageOf(answer.error) });
    const pool = await api.GET("/api/v1/workspaces/{ws}/models/{id}/load-balancing", { params: { path } });
    if (pool.data) live(pool.data);
    setMessage({
      kind: "done",
      text: "Cooldowns cleared. A credential the provider rejected stays out until it is changed or validated.",
    });
  }

  return (
    <section
      class="card pane"
      role="dialog"
      aria-modal="false"
      aria-label="Load balancing"
      onKeyDown={(e) => e.key === "Escape" && !e.defaultPrevented && onClose()}
    >
      <div class="pane-head">
        <h2 ref={heading} tabIndex={-1}>
          Load balancing · {model.name}
        </h2>
        <span class="spacer" />
        <button type="button" class="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      {!draft || !view || providers.length === 0 ? (
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
          {!feature && (
            <p class="upgrade" role="note">
              Load balancing is a paid feature. Upgrade this workspace to a paid plan, or install a license on
              this instance, to turn it on. You can still prepare the pool; it stays off until then.
            </p>
          )}
          {(feature || view.enabled) && (
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
            onChange={(i, e) => edit((d) => ({ entries: d.entries.map((x, j) => (j === i ? e : x)) }))}
            onRemove={(i) => edit((d) => ({ entries: d.entries.filter((_, j) => j !== i) }))}
          />
          {!readOnly && (
            <AddCredential
              ws={ws}
              providers={sameFamily}
              credentials={credentials}
              hasDefault={draft.entries.some((e) => e.credential_id === null)}
              onPick={(c) => edit((d) => ({ entries: [...d.entries, newEntry(c?.id ?? null, c?.name ?? "Default Config")] }))}
              onCreated={(c) => {
                setCredentials((cs) => [...cs, c]);
                edit((d) => ({ entries: [...d.entries, newEntry(c.id, c.name)] }));
              }}
            />
          )}
          <Settings draft={draft} errors={errors} readOnly={readOnly} onChange={edit} />
          {message && (
            <p class={message.kind === "done" ? "done" : "error"} role={message.kind === "done" ? "status" : "alert"}>
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
              {message?.kind === "conflict" && (
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
