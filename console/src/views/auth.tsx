// Sign in and sign up: the only screens without a session.
import { useState } from "preact/hooks";
import { api, fieldErrors, messageOf } from "../api/client";
import { session } from "../session";
import { Refusal } from "./notice";

type Mode = "signin" | "signup";

/** The sign-in form, with a switch to sign up. */
export function Auth() {
  const [mode, setMode] = useState<Mode>("signin");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFields({});
    const answer =
      mode === "signin"
        ? await api.POST("/api/v1/auth/login", { body: { email, password } })
        : await api.POST("/api/v1/auth/signup", { body: { email, password, name } });
    setBusy(false);
    if (answer.data) {
      session.signIn(answer.data.access_token);
    } else {
      setError(messageOf(answer.error));
      setFields(fieldErrors(answer.error));
    }
  }

  const title = mode === "signin" ? "Sign in" : "Sign up";
  return (
    <section class="card narrow" aria-labelledby="auth-title">
      <h1 id="auth-title">{title} to Rotor</h1>
      {session.endedBecause() && (
        <p class="notice" role="status">
          {session.endedBecause()}
        </p>
      )}
      <form onSubmit={submit} noValidate>
        {mode === "signup" && (
          <Field id="name" label="Name" value={name} onInput={setName} error={fields.name} autoComplete="name" />
        )}
        <Field id="email" label="Email" type="email" value={email} onInput={setEmail} error={fields.email} autoComplete="email" />
        <Field
          id="password"
          label="Password"
          type="password"
          value={password}
          onInput={setPassword}
          error={fields.password}
          autoComplete={mode === "signin" ? "current-password" : "new-password"}
        />
        <Refusal text={error} />
        <button type="submit" disabled={busy}>
          {title}
        </button>
      </form>
      <p>
        {mode === "signin" ? "No account yet? " : "Have an account? "}
        <button type="button" class="link" onClick={() => setMode(mode === "signin" ? "signup" : "signin")}>
          {mode === "signin" ? "Sign up" : "Sign in"}
        </button>
      </p>
    </section>
  );
}

interface FieldProps {
  id: string;
  label: string;
  value: string;
  onInput: (v: string) => void;
  type?: string;
  error?: string | undefined;
  autoComplete?: string;
}

/** A labelled input with its server error next to it. */
export function Field({ id, label, value, onInput, type = "text", error, autoComplete }: FieldProps) {
  const errorId = `${id}-error`;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        type={type}
        value={value}
        autoComplete={autoComplete}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errorId : undefined}
        onInput={(e) => onInput((e.target as HTMLInputElement).value)}
      />
      {error && (
        <p id={errorId} class="error">
          {error}
        </p>
      )}
    </div>
  );
}
