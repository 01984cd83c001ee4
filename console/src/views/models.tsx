// The workspace's model list: each model with its provider, upstream name and, when its pool
// is in effect, the load-balancing icon (named for assistive technology, not colour alone).
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import type { Ctx } from "./context";

type Model = Schemas["ModelView"];

/** The models of the current workspace. */
export function Models({ ctx }: { ctx: Ctx }) {
  const ws = ctx.ws.id;
  const [models, setModels] = useState<Model[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setModels(null);
    void (async () => {
      const answer = await api.GET("/api/v1/workspaces/{ws}/models", { params: { path: { ws } } });
      if (answer.data) setModels(answer.data.data);
      else setError(messageOf(answer.error));
    })();
  }, [ws]);

  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!models) return <p>Loading models…</p>;
  return (
    <section class="card" aria-labelledby="models-title">
      <h2 id="models-title">Models</h2>
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
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
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
