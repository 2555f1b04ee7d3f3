// The UI's state: what is loaded, what is selected, which view shows.

import type { AccountView } from "./bindings/AccountView";
import type { HistoryFilter } from "./bindings/HistoryFilter";
import type { Activity } from "./bindings/Activity";
import type { Prefs } from "./bindings/Prefs";
import type { RequestDetail } from "./bindings/RequestDetail";
import type { RequestView } from "./bindings/RequestView";

export type View = "inbox" | "activity" | "history" | "accounts";

export const app = {
  view: "inbox" as View,
  pending: [] as RequestView[],
  /** History as loaded so far, page by page. */
  history: {
    rows: [] as RequestView[],
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
  prefs: { dnd: false, notify_activity: false } as Prefs,
  /** Index into the visible list of the current view. */
  cursor: 0,
  /** Requests ticked for a bulk decision. */
  checked: new Set<number>(),
  /** Requests whose decision is on its way. */
  sending: new Set<number>(),
  detail: null as RequestDetail | null,
  filter: { search: "", account: "", platform: "", kind: "", agent: "" },
  /** The history toolbar; `from`/`to` are local dates (YYYY-MM-DD). */
  historyFilter: { search: "", status: "", account: "", platform: "", agent: "", from: "", to: "" },
};
