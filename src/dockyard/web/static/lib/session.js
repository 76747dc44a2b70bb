// Who is signed in, and the workspace they are working in (remembered in this browser).
import { useContext } from "preact/hooks";
import { createContext } from "./html.js";

export const SessionContext = createContext(null);
export const useSession = () => useContext(SessionContext);

const WORKSPACE_KEY = "dockyard.workspace";
export const rememberedWorkspace = () => localStorage.getItem(WORKSPACE_KEY);
export const rememberWorkspace = (name) => localStorage.setItem(WORKSPACE_KEY, name);

// The workspace to start in: the remembered one if the user still belongs to it, else their own.
export function startingWorkspace(user, workspaces) {
  const names = workspaces.map((w) => w.name);
  const remembered = rememberedWorkspace();
  if (remembered && names.includes(remembered)) return remembered;
  return names.includes(user.username) ? user.username : names[0] || null;
}
