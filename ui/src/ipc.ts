// The one typed door to the Rust side. Command names and argument shapes
// are checked against the generated bindings, so a typo is a compile error.

import type { About } from "./bindings/About";
import type { AccountView } from "./bindings/AccountView";
import type { Activity } from "./bindings/Activity";
import type { AccountForm } from "./bindings/AccountForm";
import type { AppStatus } from "./bindings/AppStatus";
import type { Changes } from "./bindings/Changes";
import type { DecideArgs } from "./bindings/DecideArgs";
import type { DecideResult } from "./bindings/DecideResult";
import type { HistoryFilter } from "./bindings/HistoryFilter";
import type { HistoryPageView } from "./bindings/HistoryPageView";
import type { IpcError } from "./bindings/IpcError";
import type { PendingFilter } from "./bindings/PendingFilter";
import type { NotificationPrefs } from "./bindings/NotificationPrefs";
import type { RequestDetail } from "./bindings/RequestDetail";
import type { RequestRow } from "./bindings/RequestRow";

interface Commands {
  pending: { args: { filter: PendingFilter }; result: RequestRow[] };
  detail: { args: { id: number }; result: RequestDetail };
  decide: { args: { args: DecideArgs }; result: DecideResult[] };
  history_page: { args: { filter: HistoryFilter }; result: HistoryPageView };
  activity: { args: { limit?: number }; result: Activity[] };
  mark_activity_read: { args: { id: number }; result: boolean };
  accounts: { args: Record<string, never>; result: AccountView[] };
  save_account: { args: { form: AccountForm }; result: AccountView };
  remove_account: { args: { name: string }; result: null };
  retry_account: { args: { id: number }; result: boolean };
  prefs: { args: Record<string, never>; result: NotificationPrefs };
  set_prefs: { args: { prefs: NotificationPrefs }; result: NotificationPrefs };
  snooze: { args: { id: number; until: string }; result: string };
  status: { args: Record<string, never>; result: AppStatus };
  about: { args: Record<string, never>; result: About };
  set_open_at_login: { args: { on: boolean }; result: boolean };
}

interface Events {
  "inbox-changed": Changes;
  "open-request": number;
}

interface TauriGlobal {
  core: { invoke(cmd: string, args?: unknown): Promise<unknown> };
  event: {
    listen(event: string, handler: (e: { payload: unknown }) => void): Promise<() => void>;
  };
}

function tauri(): TauriGlobal {
  const t = (window as unknown as { __TAURI__?: TauriGlobal }).__TAURI__;
  if (!t) throw new Error("not running inside the Countersign app");
  return t;
}

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** The message of anything a command threw. */
export function errorText(e: unknown): string {
  if (isIpcError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export function call<K extends keyof Commands>(
  cmd: K,
  args: Commands[K]["args"],
): Promise<Commands[K]["result"]> {
  return tauri().core.invoke(cmd, args) as Promise<Commands[K]["result"]>;
}

export function on<K extends keyof Events>(event: K, handler: (payload: Events[K]) => void): void {
  void tauri().event.listen(event, (e) => handler(e.payload as Events[K]));
}
