// The signed-in frame: who is signed in, the workspace switch with its plan, the tabs, sign out.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
import { session } from "../session";
import { manages, type Ctx } from "./context";
import { NewWorkspace } from "./new_workspace";
import { TABS } from "./routes";
import { Refusal } from "./notice";

type Workspace = Schemas["MemberWorkspace"];

/** The tab named by the URL's hash (`#/credentials`), the first one otherwise. */
function tabFromHash(): string {
  return location.hash.replace(/^#\/?/, "").split("/")[0] || (TABS[0]?.id ?? "");
}

/** The page once signed in. */
export function Shell() {
  const [me, setMe] = useState<Schemas["User"] | null>(null);
  const [workspaces, setWorkspaces] = useState<Workspace[]>([]);
  const [current, setCurrent] = useState<string | null>(null);
  const [detail, setDetail] = useState<Schemas["WorkspaceDetail"] | null>(null);
  const [tab, setTab] = useState(tabFromHash());
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const onHash = () => setTab(tabFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    void (async () => {
      const [user, list] = await Promise.all([
        api.GET("/api/v1/me"),
        listAll((query) => api.GET("/api/v1/workspaces", { params: { query } })),
      ]);
      // A 401 has already ended the session (api/client.ts), with its reason.
      if (user.response.status === 401) return;
      if (!user.data || !list.data) return setError(messageOf(user.error ?? list.error));
      setMe(user.data);
      setWorkspaces(list.data.data);
      setCurrent(list.data.data[0]?.id ?? null);
    })();
  }, []);

  // Only the answer for the workspace chosen last is shown (a slow one for a previous choice
  // is dropped).
  const wanted = useRef<string | null>(null);
  async function readDetail(ws: string) {
    wanted.current = ws;
    const answer = await api.GET("/api/v1/workspaces/{ws}", { params: { path: { ws } } });
    if (wanted.current !== ws) return;
    if (answer.data) {
      setDetail(answer.data);
      setError(null);
    } else setError(messageOf(answer.error));
  }

  useEffect(() => {
    if (!current) return;
    setDetail(null);
    void readDetail(current);
  }, [current]);

  const tabs = TABS.filter((t) => !t.adminOnly || me?.is_admin);
  const active = tabs.find((t) => t.id === tab) ?? tabs[0];
  const ctx: Ctx | null = me && detail ? { me, ws: detail, canManage: manages(detail.role), refresh: () => void readDetail(detail.id) } : null;
  return (
    <div class="shell">
      <header class="bar">
        <strong class="brand">Rotor</strong>
        {workspaces.length > 0 && (
          <label class="switch">
            Workspace{" "}
            <select value={current ?? ""} onChange={(e) => setCurrent((e.target as HTMLSelectElement).value)}>
              {workspaces.map((w) => (
                <option value={w.id} key={w.id}>
                  {w.name}
                </option>
              ))}
            </select>
          </label>
        )}
        {detail && (
          <span class="plan">
            <span class="visually-hidden">Plan: </span>
            {detail.plan}
          </span>
        )}
        <NewWorkspace
          onCreated={(ws) => {
            setWorkspaces([...workspaces, ws]);
            setCurrent(ws.id);
          }}
        />
        <span class="spacer" />
        {me && <span class="who">{me.email}</span>}
        <button type="button" onClick={() => session.signOut()}>
          Sign out
        </button>
      </header>
      <nav class="tabs" aria-label="Sections">
        {tabs.map((t) => (
          <a key={t.id} href={`#/${t.id}`} aria-current={t.id === active?.id ? "page" : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
      <main>
        <Refusal text={error} />
        {me && workspaces.length === 0 && !error && (
          <p class="notice">You are not a member of any workspace yet: create one with New workspace.</p>
        )}
        {ctx && active && (
          <>
            <h1>{ctx.ws.name}</h1>
            <p class="muted">
              Your role: {ctx.ws.role}. Plan: {ctx.ws.plan}. Load balancing:{" "}
              {ctx.ws.features.load_balancing ? "available" : "not available (a paid plan or a license turns it on)"}.
            </p>
            <active.view ctx={ctx} key={`${ctx.ws.id}/${active.id}`} />
          </>
        )}
      </main>
    </div>
  );
}
