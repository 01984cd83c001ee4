// The signed-in session: the token lives in sessionStorage (this tab only, gone when it
// closes; never a cookie, so no other origin can send it), and in memory for the page.
const KEY = "rotor.session";

/** sessionStorage, or null where the browser blocks site storage (the session then lives in
 * memory only, for this page). */
function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

let current: string | null = storage()?.getItem(KEY) ?? null;
/** Why the last session ended when it was not the user's choice (shown on the sign-in form). */
let ended: string | null = null;
const listeners = new Set<() => void>();

export const session = {
  token(): string | null {
    return current;
  },
  signIn(token: string): void {
    current = token;
    ended = null;
    storage()?.setItem(KEY, token);
    listeners.forEach((l) => l());
  },
  signOut(why: string | null = null): void {
    current = null;
    ended = why;
    storage()?.removeItem(KEY);
    listeners.forEach((l) => l());
  },
  /** Why the session ended, when the server ended it. */
  endedBecause(): string | null {
    return ended;
  },
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
