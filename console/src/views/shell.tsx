// The signed-in frame: who is signed in, the workspace switch with its plan, sign out.
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import { session } from "../session";
import { Models } from "./models";

type Workspace = Schemas["MemberWorkspace"];

/** The page once signed in. */
export function Shell() {
  const [me, setMe] = useState<Schemas["User"] | null>(null);
  const [workspaces, setWorkspaces] = useState<Workspace[]>([]);
  const [current, setCurrent] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void (async () => {
      const [user, list] = await Promise.all([api.GET("/api/v1/me"), api.GET("/api/v1/workspaces")]);
      if (user.response.status === 401) return session.signOut();
      if (!user.data || !list.data) return setError(messageOf(user.error ?? list.error));
      setMe(user.data);
      setWorkspaces(list.data.data);
      setCurrent(list.data.data[0]?.id ?? null);
    })();
  }, []);

  const workspace = workspaces.find((w) => w.id === current);
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
        {workspace && (
          <span class="plan" aria-label={`Plan: ${workspace.plan}`}>
            {workspace.plan}
          </span>
        )}
        <span class="spacer" />
        {me && <span class="who">{me.email}</span>}
        <button type="button" onClick={() => session.signOut()}>
          Sign out
        </button>
      </header>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {workspace && (
        <>
          <h1>{workspace.name}</h1>
          <p>
            Your role: {workspace.role}. Plan: {workspace.plan}.
          </p>
          <Models ws={workspace.id} key={workspace.id} />
        </>
      )}
    </div>
  );
}
