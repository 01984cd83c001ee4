// What every signed-in screen is given: the user, the current workspace with its features,
// and whether the user may change it (owners and admins manage, the others read).
import type { Schemas } from "../api/client";

/** The current workspace as a screen sees it. */
export interface Ctx {
  me: Schemas["User"];
  ws: Schemas["WorkspaceDetail"];
  /** Owners and admins change things; editors and normal members read. */
  canManage: boolean;
  /** Reads the workspace again (its plan and features change with a license or a plan). */
  refresh: () => void;
}

/** Whether `role` manages the workspace. */
export function manages(role: Schemas["Role"]): boolean {
  return role === "owner" || role === "admin";
}
