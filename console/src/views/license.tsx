// For instance administrators: the installed license's status and a form to install one; an
// invalid or expired license is refused by the server (shown as text) and changes nothing.
import { useEffect, useState } from "preact/hooks";
import { api, fieldErrors, messageOf, type Schemas } from "../api/client";
import { utc } from "./audit";
import type { Ctx } from "./context";
import { Done } from "./notice";

type Status = Schemas["LicenseStatus"];

/** What each status means, in words. */
const MEANING: Record<string, string> = {
  none: "No license is installed: the instance runs without licensed features.",
  valid: "The license is valid.",
  expired: "The license has expired: its features are off until a renewal is installed.",
  invalid: "The license could not be verified: its features are off.",
};

/** The license screen. */
export function License({ ctx }: { ctx: Ctx }) {
  const [status, setStatus] = useState<Status | null>(null);
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void api.GET("/api/v1/admin/license").then((answer) => {
      if (answer.data) setStatus(answer.data);
      else setError(messageOf(answer.error));
    });
  }, []);

  async function install(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFieldError(null);
    setDone(null);
    const answer = await api.PUT("/api/v1/admin/license", { body: { license: token.trim() } });
    setBusy(false);
    if (answer.data) {
      setStatus(answer.data);
      // The bar's "Load balancing: available" follows the license at once.
      ctx.refresh();
      setToken("");
      setDone(`License installed: ${answer.data.status}.`);
    } else {
      setError(messageOf(answer.error));
      setFieldError(fieldErrors(answer.error).license ?? null);
    }
  }

  return (
    <>
      <section class="card" aria-labelledby="license-title">
        <h2 id="license-title">License</h2>
        {!status && !error && <p>Loading the license…</p>}
        {status && (
          <>
            <p data-license-status={status.status}>
              Status: <strong>{status.status}</strong>. {MEANING[status.status] ?? ""}
            </p>
            <dl class="facts">
              {status.licensee && (
                <>
                  <dt>Licensee</dt>
                  <dd data-fact="licensee">{status.licensee}</dd>
                </>
              )}
              {status.edition && (
                <>
                  <dt>Edition</dt>
                  <dd>{status.edition}</dd>
                </>
              )}
              {status.features && (
                <>
                  <dt>Features</dt>
                  <dd data-fact="features">{status.features.length ? status.features.join(", ") : "none"}</dd>
                </>
              )}
              {status.expires_at && (
                <>
                  <dt>Expires</dt>
                  <dd>
                    <time dateTime={status.expires_at}>{utc(status.expires_at)}</time>
                  </dd>
                </>
              )}
              {status.max_workspaces != null && (
                <>
                  <dt>Workspaces allowed</dt>
                  <dd>{status.max_workspaces}</dd>
                </>
              )}
              <dt>Trusted key</dt>
              <dd>
                <code>{status.trusted_key_id}</code>
              </dd>
            </dl>
          </>
        )}
      </section>
      <section class="card" aria-labelledby="install-title">
        <h2 id="install-title">Install a license</h2>
        <form onSubmit={install} noValidate>
          <div class="field">
            <label for="license-token">License token</label>
            <textarea
              id="license-token"
              rows={4}
              spellcheck={false}
              value={token}
              aria-invalid={fieldError ? true : undefined}
              aria-describedby={fieldError ? "license-token-error" : undefined}
              onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)}
            />
            {fieldError && (
              <p id="license-token-error" class="error">
                {fieldError}
              </p>
            )}
          </div>
          {error && (
            <p class="error" role="alert" data-message="error">
              {error}
            </p>
          )}
          <Done text={done} />
          <button type="submit" disabled={busy || token.trim() === ""}>
            Install license
          </button>
        </form>
      </section>
    </>
  );
}
