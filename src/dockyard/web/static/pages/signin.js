// Sign in with a username and password (personal access tokens are for the CLI and scripts).
import { useState } from "preact/hooks";
import { post } from "../lib/api.js";
import { html } from "../lib/html.js";
import { Icon } from "../lib/icons.js";
import { Button, ErrorNote, Field, useAction } from "../components/ui.js";

export function SignInPage({ onSignedIn }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [submit, busy, error] = useAction(async () => {
    await post("/session", { username: username.trim(), password });
    await onSignedIn();
  });
  const onSubmit = (event) => {
    event.preventDefault();
    submit();
  };
  const message =
    error && error.status === 401 ? "Wrong username or password." : error && error.status === 422 ? "Enter your username and password." : null;
  return html`<main class="signin" id="main">
    <form class="card signin-card" onSubmit=${onSubmit} aria-labelledby="signin-title" novalidate>
      <div class="brand brand-large"><${Icon} name="box" size=${32} /><span>Dockyard</span></div>
      <h1 id="signin-title">Sign in</h1>
      <${Field} id="username" label="Username">
        <input id="username" name="username" autocomplete="username" required value=${username}
          onInput=${(e) => setUsername(e.target.value)} autofocus />
      </${Field}>
      <${Field} id="password" label="Password">
        <input id="password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
      </${Field}>
      <${ErrorNote} error=${error}>${message}</${ErrorNote}>
      <${Button} kind="primary" type="submit" busy=${busy} disabled=${!username || !password}>Sign in</${Button}>
      <p class="hint">The command line and scripts use personal access tokens: <code>dockyard login</code>.</p>
    </form>
  </main>`;
}
