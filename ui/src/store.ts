// The UI's state: what is loaded, what is selected, which view shows.

import type { AccountView } from "./bindings/AccountView";
import type { HistoryFilter } from "./bindings/HistoryFilter";
import type { Activity } from "./bindings/Activity";
import type { NotificationPrefs } from "./bindings/NotificationPrefs";
import type { RequestDetail } from "./bindings/RequestDetail";
import type { RequestRow } from "./bindings/RequestRow";

export type View = "inbox" | "activity" | "history" | "accounts";

export const app = {
  view: "inbox" as View,
  pending: [] as RequestRow[],
  /** History as loaded so far, page by page. */
  history: {
    /**
     * Every row listed so far, in order; pages far from the view are
     * dropped (left as holes) and fetched again when scrolled back to, so
     * memory holds a window of pages however far the list goes.
     */
    rows: [] as (RequestRow | undefined)[],
    /** The `before` cursor each listed page starts at (null: the first). */
    starts: [] as (string | null)[],
    /** Pages being fetched again after being dropped. */
    refilling: new Set<number>(),
    /** Where the next page starts; null once the last one is loaded. */
    next: null as string | null,
    /** Ended requests in the whole store. */
    total: 0,
    /** The query these rows answer (a next page continues it). */
    query: {} as HistoryFilter,
    /** Its search words, marked in the titles. */
    words: [] as string[],
    loading: false,
    error: "",
  },
  activity: [] as Activity[],
  accounts: [] as AccountView[],
  prefs: {
    dnd: false, dnd_until: null, notify_activity: false, notify_actions: false, quiet_hours: null, urgent_breaks_through: true,
  } as NotificationPrefs,
  /** Index into the visible list of the current view. */
  cursor: 0,
  /** Requests ticked for a bulk decision. */
  checked: new Set<number>(),
  /** Requests whose decision is on its way. */
  sending: new Set<number>(),
  detail: null as RequestDetail | null,
  filter: { search: "", account: "", platform: "", kind: "", agent: "", snoozed: false },
  /** The history toolbar; `from`/`to` are local dates (YYYY-MM-DD). */
  historyFilter: { search: "", status: "", account: "", platform: "", agent: "", from: "", to: "" },
};
