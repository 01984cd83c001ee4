// The management API, typed from openapi/openapi.json (`npm run gen` writes schema.d.ts).
// Every call carries the session token kept by session.ts; nothing else is stored.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { session } from "../session";

export type Schemas = components["schemas"];

const bearer: Middleware = {
  onRequest({ request }) {
    const token = session.token();
    if (token) request.headers.set("authorization", `Bearer ${token}`);
    return request;
  },
  // A 401 means the token no longer works (expired, password changed, user removed): back to
  // the sign-in form instead of screens that keep failing.
  onResponse({ response }) {
    if (response.status === 401 && session.token()) {
      session.signOut("Your session has ended. Sign in again.");
    }
    return response;
  },
  // A network failure (server down, connection cut) answers like the API's errors do, so every
  // screen shows it as text instead of hanging with an unhandled rejection.
  onError() {
    const body = { error: { code: "network_error", message: "Could not reach Rotor. Check the connection and try again." } };
    return new Response(JSON.stringify(body), { status: 503, headers: { "content-type": "application/json" } });
  },
};

/** The typed client: same origin, JSON, the session's bearer token. */
export const api = createClient<paths>({ baseUrl: "" });
api.use(bearer);

/** The API's error body (every non-2xx answer). */
export type ErrorBody = Schemas["ErrorBody"];

/** The message of an error body, or a fallback for an answer that is not one. */
export function messageOf(error: unknown, fallback = "Something went wrong"): string {
  const e = error as Partial<ErrorBody> | undefined;
  return e?.error?.message ?? fallback;
}

/** Per-field messages of a validation error (`details.fields`), for showing next to fields. */
export function fieldErrors(error: unknown): Record<string, string> {
  const details = (error as Partial<ErrorBody> | undefined)?.error?.details as
    | { fields?: Record<string, string> }
    | null
    | undefined;
  return details?.fields ?? {};
}
