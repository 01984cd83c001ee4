// The workspace's model list: each model with its provider, upstream name and, when its pool
// is in effect, the load-balancing icon (named for assistive technology, not colour alone);
// a model's **Config** opens its **Load balancing** pane.
import { useEffect, useLayoutEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
import type { Ctx } from "./context";
import { Confirm } from "./confirm";
import { LoadBalancingPane } from "./load_balancing";
import { ModelForm } from "./model_form";
import { Refusal } from "./notice";

type Model = Schemas["ModelView"];

/** The models of the current workspace. */
export function Models({ ctx }: { ctx: Ctx }) {
  const ws = ctx.ws.id;
  const [models, setModels] = useState<Model[] | null>(null);
  const [providers, setProviders] = useState<Schemas["ProviderView"][]>([]);
  const [menu, setMenu] = useState<string | null>(null);
  const [pane, setPane] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);

  async function load() {
    const answer = await listAll((query) => api.GET("/api/v1/workspaces/{ws}/models", { params: { path: { ws }, query } }));
    if (answer.data) setModels(answer.data.data);
    else setError(messageOf(answer.error));
  }

  useEffect(() => {
    setModels(null);
    void load();
    void api.GET("/api/v1/providers").then((r) => (r.data ? setProviders(r.data.data) : setError(messageOf(r.error))));
  }, [ws]);

  // A menu opens with its item focused; Escape closes it and returns to its Config button.
  useLayoutEffect(() => {
    if (menu) document.querySelector<HTMLElement>(`[data-menu="${menu}"] [role="menuitem"]`)?.focus();
  }, [menu]);
  const closeMenu = (id: string) => {
    setMenu(null);
    document.querySelector<HTMLElement>(`[data-config="${id}"]`)?.focus();
  };

  async function remove(id: string) {
    const answer = await api.DELETE("/api/v1/workspaces/{ws}/models/{id}", { params: { path: { ws, id } } });
    setRemoving(null);
    if (answer.response.status !== 204) return setRefusal(messageOf(answer.error));
    setRefusal(null);
    if (pane === id) setPane(null);
    await load();
  }

  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!models) return <p>Loading models…</p>;
  const open = models.find((m) => m.id === pane);
  return (
    <>
      <section class="card" aria-labelledby="models-title">
        <div class="pane-head">
          <h2 id="models-title">Models</h2>
          <span class="spacer" />
          {ctx.canManage && !adding && (
            <button type="button" onClick={() => setAdding(true)}>
              Add model
            </button>
          )}
        </div>
        <Refusal text={refusal} />
        {adding && (
          <ModelForm
            ws={ws}
            providers={providers}
            onCancel={() => setAdding(false)}
            onCreated={() => {
              setAdding(false);
              void load();
            }}
          />
        )}
        {models.length === 0 ? (
          <p>No models yet.</p>
        ) : (
          <table class="models">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Provider</th>
                <th scope="col">Upstream model</th>
                <th scope="col">Type</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {models.map((m) => (
                <tr key={m.id} data-model={m.name}>
                  <th scope="row">
                    {m.name}
                    {m.load_balancing.effective && <BalancedIcon />}
                  </th>
                  <td>{m.provider}</td>
                  <td>{m.upstream_model}</td>
                  <td>{m.model_type}</td>
                  <td class="actions" onKeyDown={(e) => e.key === "Escape" && menu === m.id && closeMenu(m.id)}>
                    <button
                      type="button"
                      class="secondary"
                      data-config={m.id}
                      aria-haspopup="menu"
                      aria-expanded={menu === m.id}
                      onClick={() => setMenu(menu === m.id ? null : m.id)}
                    >
                      Config
                    </button>
                    {menu === m.id && (
                      <div
                        class="menu"
                        role="menu"
                        data-menu={m.id}
                        aria-label={`Config ${m.name}`}
                      >
                        <button
                          type="button"
                          role="menuitem"
                          onClick={() => {
                            setMenu(null);
                            setPane(m.id);
                          }}
                        >
                          Load balancing
                        </button>
                        {ctx.canManage && (
                          <button
                            type="button"
                            role="menuitem"
                            onClick={() => {
                              setMenu(null);
                              setRemoving(m.id);
                            }}
                          >
                            Remove model
                          </button>
                        )}
                      </div>
                    )}
                    {removing === m.id && (
                      <Confirm
                        label={`Remove ${m.name}?`}
                        text={`Remove ${m.name}? Its pool goes with it.`}
                        action="Remove"
                        onConfirm={() => remove(m.id)}
                        onKeep={() => setRemoving(null)}
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {open && (
        <LoadBalancingPane
          key={open.id}
          ctx={ctx}
          model={open}
          providers={providers}
          onClose={() => {
            setPane(null);
            document.querySelector<HTMLElement>(`[data-config="${open.id}"]`)?.focus();
          }}
          onSaved={() => void load()}
        />
      )}
    </>
  );
}

/** Dify's "special icon" for a model whose requests are spread over a pool. */
function BalancedIcon() {
  return (
    <span class="lb-icon" role="img" aria-label="Load balancing enabled" title="Load balancing enabled">
      <svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">
        <path d="M2 4h7l-2-2m2 2-2 2M14 12H7l2-2m-2 2 2 2" fill="none" stroke="currentColor" stroke-width="1.6" />
      </svg>
    </span>
  );
}
