// The workspace's audit log, newest first, a page at a time ("Load more"): when, who, what,
// on which target, and the event's non-secret details.
import { useEffect, useState } from "preact/hooks";
import { api, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
import type { Ctx } from "./context";
import { Refusal } from "./notice";

type Event = Schemas["AuditEvent"];

/** Events per page. */
const PAGE = 50;
/** Detail keys never shown, whatever the server sends (it sends no secret; this is a second lock). */
const HIDDEN = /secret|password|token|api_?key$|^key$|authorization/i;

/** `2026-12-01T10:20:30.123Z` → `2026-12-01 10:20:30 UTC`. */
export function utc(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/**
 * A detail value as text: `{from, to}` reads "from → to", objects and lists are flattened, and
 * unset fields (null, empty) are left out.
 */
export function detailText(value: unknown): string {
  if (value === null || value === undefined) return "none";
  if (typeof value !== "object") return String(value);
  if (Array.isArray(value)) return value.map(detailText).join(", ");
  const o = value as Record<string, unknown>;
  if ("from" in o && "to" in o && Object.keys(o).length === 2) return `${detailText(o.from)} → ${detailText(o.to)}`;
  return Object.entries(o)
    .filter(([k, v]) => !HIDDEN.test(k) && v !== null && v !== undefined)
    .map(([k, v]) => [k, detailText(v)] as const)
    .filter(([, text]) => text !== "")
    .map(([k, text]) => `${k}: ${text}`)
    .join("; ");
}

/** The audit log of the current workspace. */
export function Audit({ ctx }: { ctx: Ctx }) {
  const ws = ctx.ws.id;
  const [events, setEvents] = useState<Event[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [people, setPeople] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function page(after: string | null) {
    setBusy(true);
    const query = after ? { limit: PAGE, cursor: after } : { limit: PAGE };
    const answer = await api.GET("/api/v1/workspaces/{ws}/audit-events", { params: { path: { ws }, query } });
    setBusy(false);
    if (!answer.data) return setError(messageOf(answer.error));
    const got = answer.data.data;
    setEvents((old) => (after && old ? [...old, ...got] : got));
    setCursor(answer.data.next_cursor ?? null);
  }

  useEffect(() => {
    setEvents(null);
    void page(null);
    void listAll((query) => api.GET("/api/v1/workspaces/{ws}/members", { params: { path: { ws }, query } })).then((r) => {
      const names: Record<string, string> = { [ctx.me.id]: ctx.me.email };
      for (const m of r.data?.data ?? []) names[m.user_id] = m.email;
      setPeople(names);
    });
  }, [ws]);

  const who = (id: string | null | undefined) => (id ? (people[id] ?? `user ${id.slice(0, 8)}`) : "system");
  const target = (e: Event) => {
    const id = e.target_id ?? "";
    const name = e.target_type === "member" && id ? people[id] : undefined;
    return id ? `${e.target_type} ${name ?? id.slice(0, 8)}` : e.target_type;
  };

  return (
    <section class="card" aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <p class="muted">Every change to the workspace, newest first. Times are UTC.</p>
      <Refusal text={error} />
      {!events && !error && <p>Loading the audit log…</p>}
      {events && events.length === 0 && <p>No events yet.</p>}
      {events && events.length > 0 && (
        <table class="models audit">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.id} data-event={e.id} data-action={e.action}>
                <td>
                  <time dateTime={e.created_at}>{utc(e.created_at)}</time>
                </td>
                <td>{who(e.actor_user_id)}</td>
                <td>
                  <code>{e.action}</code>
                </td>
                <td title={e.target_id ?? undefined}>{target(e)}</td>
                <td class="details">{detailText(e.details)}</td>
              </tr>
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
