// The workspace's members and their roles: owners and admins add a member by email, change a
// role and remove a member (confirmed in the page); the server's refusals are shown as text.
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import { listAll } from "../api/list";
import { Field } from "./auth";
import type { Ctx } from "./context";

type Member = Schemas["Member"];
type Role = Schemas["Role"];

/** The roles in the order the selects offer them, with what each may do. */
export const ROLES: { role: Role; label: string }[] = [
  { role: "owner", label: "Owner" },
  { role: "admin", label: "Admin" },
  { role: "editor", label: "Editor" },
  { role: "normal", label: "Normal" },
];

type Message = { kind: "error" | "done"; text: string } | null;

/** The members of the current workspace. */
export function Members({ ctx }: { ctx: Ctx }) {
  const ws = ctx.ws.id;
  const [members, setMembers] = useState<Member[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [message, setMessage] = useState<Message>(null);

  async function load() {
    const answer = await listAll((query) => api.GET("/api/v1/workspaces/{ws}/members", { params: { path: { ws }, query } }));
    if (answer.data) setMembers(answer.data.data);
    else setError(messageOf(answer.error));
  }

  useEffect(() => {
    void load();
  }, [ws]);

  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!members) return <p>Loading members…</p>;
  return (
    <>
      <section class="card" aria-labelledby="members-title">
        <h2 id="members-title">Members</h2>
        <p class="muted">
          Owners and admins manage the workspace; editors and normal members read it. Only owners grant, change or remove
          the owner and admin roles, and a workspace keeps at least one owner.
        </p>
        <table class="models members">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              {ctx.canManage && (
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <MemberRow
                key={m.user_id}
                ctx={ctx}
                member={m}
                onChanged={(text) => {
                  setMessage({ kind: "done", text });
                  void load();
                }}
                onRefused={(text) => setMessage({ kind: "error", text })}
              />
            ))}
          </tbody>
        </table>
        {message && (
          <p class={message.kind} role={message.kind === "error" ? "alert" : "status"} data-message={message.kind}>
            {message.text}
          </p>
        )}
      </section>
      {ctx.canManage && (
        <AddMember
          ws={ws}
          onAdded={(m) => {
            setMessage({ kind: "done", text: `${m.email} was added as ${m.role}.` });
            void load();
          }}
        />
      )}
    </>
  );
}

interface RowProps {
  ctx: Ctx;
  member: Member;
  onChanged: (text: string) => void;
  onRefused: (text: string) => void;
}

/** One member: the role (a select with **Change role** for managers) and **Remove**. */
function MemberRow({ ctx, member, onChanged, onRefused }: RowProps) {
  const ws = ctx.ws.id;
  const path = { ws, user_id: member.user_id };
  const [role, setRole] = useState<Role>(member.role);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const removeButton = useRef<HTMLButtonElement>(null);
  // Whether closing the confirmation gives the focus back to Remove (Cancel, or a refusal).
  const refocus = useRef(false);
  const selectId = `role-${member.user_id}`;
  const you = member.user_id === ctx.me.id;

  useEffect(() => setRole(member.role), [member.role]);
  // Focus moves as the confirmation opens or closes, before the next paint.
  useLayoutEffect(() => {
    if (confirming) confirmButton.current?.focus();
    else if (refocus.current) {
      refocus.current = false;
      removeButton.current?.focus();
    }
  }, [confirming]);

  async function changeRole() {
    setBusy(true);
    const answer = await api.PATCH("/api/v1/workspaces/{ws}/members/{user_id}", { params: { path }, body: { role } });
    setBusy(false);
    if (answer.data) {
      onChanged(`${member.email} is now ${answer.data.role}.`);
      // Your own role decides what the other screens offer you.
      if (you) ctx.refresh();
    } else {
      setRole(member.role);
      onRefused(messageOf(answer.error));
    }
  }

  async function remove() {
    setBusy(true);
    const answer = await api.DELETE("/api/v1/workspaces/{ws}/members/{user_id}", { params: { path } });
    setBusy(false);
    if (answer.response.ok) {
      onChanged(`${member.email} was removed.`);
      // Leaving a workspace: the console starts again on the ones you still have.
      if (you) location.reload();
      return;
    }
    refocus.current = true;
    setConfirming(false);
    onRefused(messageOf(answer.error));
  }

  function cancel() {
    refocus.current = true;
    setConfirming(false);
  }

  return (
    <tr data-member={member.email}>
      <th scope="row">
        {member.name}
        {you && <span class="muted"> (you)</span>}
      </th>
      <td>{member.email}</td>
      <td>
        {ctx.canManage ? (
          <span class="inline-field">
            <label for={selectId} class="visually-hidden">
              Role of {member.email}
            </label>
            <select id={selectId} value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
              {ROLES.map((r) => (
                <option key={r.role} value={r.role}>
                  {r.label}
                </option>
              ))}
            </select>
            <button type="button" class="secondary" disabled={busy || role === member.role} onClick={() => void changeRole()}>
              Change role
            </button>
          </span>
        ) : (
          <span data-role={member.role}>{member.role}</span>
        )}
      </td>
      {ctx.canManage && (
        <td class="actions">
          {confirming ? (
            <span class="confirm-inline" role="group" aria-label={`Remove ${member.email}?`}>
              <span>Remove {member.email}?</span>
              <button type="button" class="danger" ref={confirmButton} disabled={busy} onClick={() => void remove()}>
                Yes, remove
              </button>
              <button type="button" class="secondary" onClick={cancel}>
                Cancel
              </button>
            </span>
          ) : (
            <button type="button" class="secondary" ref={removeButton} onClick={() => setConfirming(true)}>
              Remove
            </button>
          )}
        </td>
      )}
    </tr>
  );
}

/** The form that adds an existing user by email with a role. */
function AddMember({ ws, onAdded }: { ws: string; onAdded: (m: Member) => void }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("normal");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFields({});
    const answer = await api.POST("/api/v1/workspaces/{ws}/members", { params: { path: { ws } }, body: { email, role } });
    setBusy(false);
    if (answer.data) {
      setEmail("");
      onAdded(answer.data);
    } else {
      const byField = fieldErrors(answer.error);
      setFields(byField);
      if (Object.keys(byField).length === 0) setError(messageOf(answer.error));
    }
  }

  return (
    <section class="card" aria-labelledby="add-member-title">
      <h2 id="add-member-title">Add member</h2>
      <p class="muted">The person must already have a Rotor account.</p>
      <form onSubmit={submit} noValidate class="inline-form">
        <Field id="member-email" label="Email" type="email" value={email} onInput={setEmail} error={fields.email} autoComplete="off" />
        <div class="field">
          <label for="member-role">Role</label>
          <select id="member-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r.role} value={r.role}>
                {r.label}
              </option>
            ))}
          </select>
          {fields.role && <p class="error">{fields.role}</p>}
        </div>
        <div class="field submit">
          <button type="submit" disabled={busy}>
            Add member
          </button>
        </div>
      </form>
      {error && (
        <p class="error" role="alert" data-message="error">
          {error}
        </p>
      )}
    </section>
  );
}
