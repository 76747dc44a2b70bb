// Every page of the UI: its path pattern, the component that draws it, and (for the main
// navigation) its label. A screen is added here and nowhere else.
import { RepositoryPage } from "./pages/repository.js";
import { ImagePage } from "./pages/image.js";
import { TokensPage } from "./pages/tokens.js";
import { AccessPage } from "./pages/access.js";
import { SettingsPage } from "./pages/settings.js";
import { AdminPage } from "./pages/admin.js";
import { UploadPage } from "./pages/upload.js";
import { BuildsPage } from "./pages/builds.js";
import { EditorPage } from "./pages/editor.js";
import { SearchPage } from "./pages/search.js";

export const ROUTES = [
  { pattern: "/repository", page: RepositoryPage, nav: "Docker Repository" },
  { pattern: "/repository/upload", page: UploadPage },
  { pattern: "/images/:name*", page: ImagePage },
  { pattern: "/builds", page: BuildsPage, nav: "Docker Images" },
  { pattern: "/builds/:name*", page: EditorPage },
  { pattern: "/access", page: AccessPage, nav: "Access" },
  { pattern: "/workspaces", page: SettingsPage, nav: "Workspace settings" },
  { pattern: "/admin", page: AdminPage, nav: "Admin", admin: true },
  { pattern: "/account/tokens", page: TokensPage },
  { pattern: "/search", page: SearchPage },
];

// The main navigation, in order (admin-only entries say so).
export const NAV = ROUTES.filter((route) => route.nav).map((route) => ({
  href: route.pattern,
  label: route.nav,
  admin: Boolean(route.admin),
}));
