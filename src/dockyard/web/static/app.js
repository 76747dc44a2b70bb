// The UI's entry point: find out who is signed in, then draw the page the URL names.
import { useEffect, useState } from "preact/hooks";
import { get, onSignedOut } from "./lib/api.js";
import { html, render } from "./lib/html.js";
import { match, useLocation } from "./lib/router.js";
import { SessionContext, rememberWorkspace, startingWorkspace } from "./lib/session.js";
import { Shell } from "./components/shell.js";
import { ErrorNote, Spinner, Empty } from "./components/ui.js";
import { SignInPage } from "./pages/signin.js";
import { ROUTES } from "./routes.js";

function Router() {
  let { path } = useLocation();
  if (path === "/" || path === "/signin") {
    // The start page is the Docker Repository; the address bar says so too.
    path = "/repository";
    history.replaceState(null, "", path + location.search);
  }
  for (const route of ROUTES) {
    const params = match(route.pattern, path);
    if (params) return html`<${route.page} ...${params} />`;
  }
  return html`<${Empty} title="No such page" icon="warn"><p>Nothing lives at <code>${path}</code>.</p></${Empty}>`;
}

function App() {
  const [state, setState] = useState({ loading: true, user: null, workspaces: [], workspace: null, error: null });
  const load = async () => {
    try {
      const session = await get("/session");
      const workspaces = await get("/workspaces?mine=true");
      setState({
        loading: false,
        user: session.user,
        workspaces,
        workspace: startingWorkspace(session.user, workspaces),
        error: null,
      });
    } catch (error) {
      setState({ loading: false, user: null, workspaces: [], workspace: null, error: error.status === 401 ? null : error });
    }
  };
  useEffect(() => {
    load();
    return onSignedOut(() => setState((old) => ({ ...old, user: null })));
  }, []);
  useEffect(() => {
    document.title = state.user ? "Dockyard" : "Sign in · Dockyard";
  }, [state.user]);
  if (state.loading) return html`<${Spinner} label="Loading Dockyard…" />`;
  if (state.error) return html`<main class="center"><${ErrorNote} error=${state.error} /></main>`;
  if (!state.user) return html`<${SignInPage} onSignedIn=${load} />`;
  const session = {
    ...state,
    setWorkspace: (name) => {
      rememberWorkspace(name);
      setState((old) => ({ ...old, workspace: name }));
    },
    refreshWorkspaces: async () => {
      const workspaces = await get("/workspaces?mine=true");
      setState((old) => ({ ...old, workspaces }));
    },
    signOut: () => setState((old) => ({ ...old, user: null })),
  };
  return html`<${SessionContext.Provider} value=${session}><${Shell}><${Router} /></${Shell}></${SessionContext.Provider}>`;
}

render(html`<${App} />`, document.getElementById("app"));
