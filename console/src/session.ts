// The signed-in session: the token lives in sessionStorage (this tab only, gone when it
// closes; never a cookie, so no other origin can send it), and in memory for the page.
const KEY = "rotor.session";

let current: string | null = sessionStorage.getItem(KEY);
const listeners = new Set<() => void>();

export const session = {
  token(): string | null {
    return current;
  },
  signIn(token: string): void {
    current = token;
    sessionStorage.setItem(KEY, token);
    listeners.forEach((l) => l());
  },
  signOut(): void {
    current = null;
    sessionStorage.removeItem(KEY);
    listeners.forEach((l) => l());
  },
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
