// For instance administrators: every workspace of the instance with its plan and member count,
// and a plan control per workspace. The API does not say whether the instance runs in saas
// mode, so the control is always there and a self-hosted instance's refusal shows as text.
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import type { Ctx } from "./context";
import { utc } from "./audit";

type Workspace = Schemas["Workspace"];
type Plan = Schemas["Plan"];

/** The plans, cheapest first. */
const PLANS: Plan[] = ["sandbox", "professional", "team", "enterprise"];

/** The instance's workspaces. */
export function AdminWorkspaces(_props: { ctx: Ctx }) {
  const [list, setList] = useState<Workspace[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

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
  }, []);

  return (
    <section class="card" aria-labelledby="workspaces-title">
      <h2 id="workspaces-title">Workspaces</h2>
      <p class="muted">
        Plans grant features in saas mode only; a self-hosted instance takes its features from the license and refuses
        plan changes.
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!list && !error && <p>Loading workspaces…</p>}
      {list && (
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
                onChanged={(changed) => setList((old) => old?.map((o) => (o.id === changed.id ? changed : o)) ?? null)}
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
function WorkspaceRow({ workspace, onChanged }: { workspace: Workspace; onChanged: (w: Workspace) => void }) {
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
        {message && (
          <p class={message.kind} role={message.kind === "error" ? "alert" : "status"} data-message={message.kind}>
            {message.text}
          </p>
        )}
      </td>
    </tr>
  );
}
