// The console's entry: the sign-in screens without a session, the shell with one.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { session } from "./session";
import { Auth } from "./views/auth";
import { Shell } from "./views/shell";

function App() {
  const [token, setToken] = useState(session.token());
  useEffect(() => session.subscribe(() => setToken(session.token())), []);
  return token ? (
    <Shell />
  ) : (
    <main>
      <Auth />
    </main>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
