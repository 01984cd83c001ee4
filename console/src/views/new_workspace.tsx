// Creating a workspace from the bar (a team, a project, a customer): its creator is its owner.
import { useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import { Field } from "./auth";

/** The New workspace button and its one-field form. */
export function NewWorkspace({ onCreated }: { onCreated: (ws: Schemas["MemberWorkspace"]) => void }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});

  async function create(e: Event) {
    e.preventDefault();
    setError(null);
    setFields({});
    const answer = await api.POST("/api/v1/workspaces", { body: { name: name.trim() } });
    if (!answer.data) {
      setError(messageOf(answer.error));
      setFields(fieldErrors(answer.error));
      return;
    }
    setOpen(false);
    setName("");
    onCreated(answer.data);
  }

  if (!open)
    return (
      <button type="button" class="secondary" onClick={() => setOpen(true)}>
        New workspace
      </button>
    );
  return (
    <form class="bar-form" onSubmit={create} noValidate aria-label="New workspace">
      <Field id="new-workspace-name" label="Workspace name" value={name} onInput={setName} error={fields.name} />
      {error && !fields.name && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit">Create</button>
      <button type="button" class="secondary" onClick={() => setOpen(false)}>
        Cancel
      </button>
    </form>
  );
}
