// The console's screens, one tab each, addressed by the URL's hash (`#/models`) so a reload
// or a bookmark lands on the same screen.
import type { ComponentType } from "preact";
import type { Ctx } from "./context";
import { Models } from "./models";
import { Credentials } from "./credentials";
import { ApiKeys } from "./api_keys";
import { Members } from "./members";
import { Usage } from "./usage";
import { Audit } from "./audit";
import { License } from "./license";
import { AdminWorkspaces } from "./admin_workspaces";

/** One screen of the console. */
export interface Tab {
  id: string;
  label: string;
  /** Shown to instance administrators only. */
  adminOnly?: boolean;
  view: ComponentType<{ ctx: Ctx }>;
}

/** The tabs, in the order the bar shows them. */
export const TABS: Tab[] = [
  { id: "models", label: "Models", view: Models },
  { id: "credentials", label: "Credentials", view: Credentials },
  { id: "api-keys", label: "API keys", view: ApiKeys },
  { id: "members", label: "Members", view: Members },
  { id: "usage", label: "Usage", view: Usage },
  { id: "audit", label: "Audit log", view: Audit },
  { id: "license", label: "License", adminOnly: true, view: License },
  { id: "workspaces", label: "Workspaces", adminOnly: true, view: AdminWorkspaces },
];
