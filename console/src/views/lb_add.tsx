// Dify's **Add credential** in the Load balancing pane: pick an existing credential of the
// model's API family (again, to raise its share), or add a new one in place from its
// provider's schema.
import { useState } from "preact/hooks";
import type { Schemas } from "../api/client";
import { CredentialForm } from "./credential_form";

type Provider = Schemas["ProviderView"];
type Credential = Schemas["CredentialView"];

interface AddProps {
  ws: string;
  /** Providers whose credentials may serve this model (its API family). */
  providers: Provider[];
  credentials: Credential[];
  /** The pool has its Default Config entry (otherwise it is offered again). */
  hasDefault: boolean;
  /** A credential picked, or null for the Default Config entry. */
  onPick: (credential: Credential | null) => void;
  /** A credential created in place (also added to the pool). */
  onCreated: (credential: Credential) => void;
}

/** The Add credential button and what it opens. */
export function AddCredential(p: AddProps) {
  const [open, setOpen] = useState<"closed" | "pick" | "new">("closed");
  const usable = new Set(p.providers.map((x) => x.id));
  const existing = p.credentials.filter((c) => usable.has(c.provider));
  return (
    <div class="add-credential">
      <button type="button" aria-expanded={open !== "closed"} onClick={() => setOpen(open === "closed" ? "pick" : "closed")}>
        Add credential
      </button>
      {open === "pick" && (
        <div class="picker" role="group" aria-label="Choose a credential">
          {existing.length === 0 && <p class="muted">No credential of this model's providers yet.</p>}
          <ul>
            {!p.hasDefault && (
              <li>
                <button
                  type="button"
                  class="secondary"
                  onClick={() => {
                    p.onPick(null);
                    setOpen("closed");
                  }}
                >
                  Default Config
                </button>{" "}
                <span class="muted">the model's own credential</span>
              </li>
            )}
            {existing.map((c) => (
              <li key={c.id}>
                <button
                  type="button"
                  class="secondary"
                  onClick={() => {
                    p.onPick(c);
                    setOpen("closed");
                  }}
                >
                  {c.name}
                </button>{" "}
                <span class="muted">{c.provider}</span>
              </li>
            ))}
          </ul>
          <button type="button" class="link" onClick={() => setOpen("new")}>
            Add a new credential
          </button>
        </div>
      )}
      {open === "new" && (
        <CredentialForm
          ws={p.ws}
          providers={p.providers}
          addLabel={{ form: "New credential", submit: "Add and use" }}
          onCancel={() => setOpen("pick")}
          onSaved={(c) => {
            p.onCreated(c);
            setOpen("closed");
          }}
        />
      )}
    </div>
  );
}
