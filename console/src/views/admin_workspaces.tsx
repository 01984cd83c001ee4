// For instance administrators: every workspace of the instance with its plan and member count,
// and, in saas mode (told by GET /admin/license's `deployment`), a plan control per workspace.
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import type { Ctx } from "./context";
import { utc } from "./audit";
import { Refusal } from "./notice";

type Workspace = Schemas["Workspace"];
type Plan = Schemas["Plan"];

/** The plans, cheapest first. */
const PLANS: Plan[] = ["sandbox", "professional", "team", "enterprise"];

/** The instance's workspaces. */
export function AdminWorkspaces({ ctx }: { ctx: Ctx }) {
  const [list, setList] = useState<Workspace[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [saas, setSaas] = useState<boolean | null>(null);

  async function page(after: string | null) {
    setBusy(true);
    const query = after ? { limit: 200, cursor: after } : { limit: 200 };
    const answer = await api.GET("/api/v1/admin/workspaces", { params: { query } });
    setBusy(false);
    if (!answer.data) return setError(messageOf(answer.error));
    const got = answer.data.data;
    setList((old) => (after && old ? [...old, ...got] : got));
    setCursor(answer.data.next_cursor ?? null);
  }

  useEffect(() => {
    void page(null);
    void api.GET("/api/v1/admin/license").then((r) => setSaas(r.data ? r.data.deployment === "saas" : false));
  }, []);

  return (
    <section class="card" aria-labelledby="workspaces-title">
      <h2 id="workspaces-title">Workspaces</h2>
      <p class="muted">
        {saas
          ? "This instance is the hosted service: a workspace's plan grants its features."
          : "This instance is self-hosted: features come from the license, and plans (set in saas mode only) have no effect."}
      </p>
      <Refusal text={error} />
      {!list && !error && <p>Loading workspaces…</p>}
      {list && saas !== null && (
        <table class="models admin-workspaces">
          <thead>
            <tr>
              <th scope="col">Workspace</th>
              <th scope="col" class="num">Members</th>
              <th scope="col">Created</th>
              <th scope="col">Plan</th>
            </tr>
          </thead>
          <tbody>
            {list.map((w) => (
              <WorkspaceRow
                key={w.id}
                workspace={w}
                saas={saas}
                onChanged={(changed) => {
                  setList((old) => old?.map((o) => (o.id === changed.id ? changed : o)) ?? null);
                  // The bar's plan and features follow when it is the current workspace.
                  if (changed.id === ctx.ws.id) ctx.refresh();
                }}
              />
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <p>
          <button type="button" class="secondary" disabled={busy} onClick={() => void page(cursor)}>
            Load more
          </button>
        </p>
      )}
    </section>
  );
}

/** One workspace: its plan as a select with **Set plan**, and the answer as text. */
function WorkspaceRow({
  workspace,
  saas,
  onChanged,
}: {
  workspace: Workspace;
  saas: boolean;
  onChanged: (w: Workspace) => void;
}) {
  const [plan, setPlan] = useState<Plan>(workspace.plan);
  const [message, setMessage] = useState<{ kind: "error" | "done"; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const selectId = `plan-${workspace.id}`;

  useEffect(() => setPlan(workspace.plan), [workspace.plan]);

  async function save() {
    setBusy(true);
    setMessage(null);
    const answer = await api.PUT("/api/v1/admin/workspaces/{ws}/plan", {
      params: { path: { ws: workspace.id } },
      body: { plan },
    });
    setBusy(false);
    if (answer.data) {
      onChanged(answer.data);
      setMessage({ kind: "done", text: `Plan set to ${answer.data.plan}.` });
    } else {
      setPlan(workspace.plan);
      setMessage({ kind: "error", text: messageOf(answer.error) });
    }
  }

  return (
    <tr data-workspace={workspace.id} data-plan={workspace.plan}>
      <th scope="row">{workspace.name}</th>
      <td class="num">{workspace.member_count}</td>
      <td class="nowrap">
        <time dateTime={workspace.created_at}>{utc(workspace.created_at)}</time>
      </td>
      <td>
        {!saas && <span class="plan-name">{workspace.plan}</span>}
        {saas && (
          <span class="inline-field">
            <label for={selectId} class="visually-hidden">
              Plan of {workspace.name}
            </label>
            <select id={selectId} value={plan} onChange={(e) => setPlan((e.target as HTMLSelectElement).value as Plan)}>
              {PLANS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
            <button type="button" class="secondary" disabled={busy || plan === workspace.plan} onClick={() => void save()}>
              Set plan
            </button>
          </span>
        )}
        {message && (
          <p class={message.kind} role={message.kind === "error" ? "alert" : "status"} data-message={message.kind}>
            {message.text}
          </p>
        )}
      </td>
    </tr>
  );
}
