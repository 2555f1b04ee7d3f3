// Countersign's window: navigation, the four views, keyboard triage, and
// live updates from the Rust side (batched `inbox-changed` events).

import { call, errorText, on } from "./ipc";
import { byId, clear, h } from "./dom";
import { age, countdown, short, thousands, urgent, when, words } from "./format";
import { renderDetail, type DecideInput } from "./detail";
import { raw } from "./json";
import { app, type View } from "./store";
import { VirtualList } from "./virtual";
import { renderAccounts } from "./accounts";
import type { Changes } from "./bindings/Changes";
import type { Outcome } from "./bindings/Outcome";
import type { HistoryFilter } from "./bindings/HistoryFilter";
import type { Platform } from "./bindings/Platform";
import type { RequestRow } from "./bindings/RequestRow";
import { agentText, revealed, searchWords } from "./text";

const ROW_HEIGHT = 58;
const main = byId<HTMLElement>("main");
let list: VirtualList | null = null;
let detailTimer = 0;

// ---------- toasts ----------

export function toast(text: string, kind: "ok" | "warn" | "error" = "ok"): void {
  const t = h("div", { class: `toast ${kind}`, role: "status", "data-testid": "toast" }, text);
  t.addEventListener("click", () => t.remove());
  byId("toasts").append(t);
  if (kind !== "error") setTimeout(() => t.remove(), 6000);
}

// ---------- navigation ----------

function renderNav(): void {
  const nav = byId<HTMLElement>("nav");
  const item = (view: View, label: string, key: string, count?: number) =>
    h("button", {
      class: `nav-item${app.view === view ? " active" : ""}`,
      type: "button",
      "data-testid": `nav-${view}`,
      title: `g ${key}`,
      onclick: () => show(view),
    }, h("span", {}, label), count ? h("span", { class: "count", "data-testid": `count-${view}` }, String(count)) : null);
  const unread = app.activity.filter((a) => !a.read).length;
  const troubled = app.accounts.filter((a) => a.state === "auth_failed" || a.state === "backing_off");
  nav.replaceChildren(
    h("div", { class: "brand" }, h("img", { class: "logo", title: "Countersign" }), "Countersign"),
    item("inbox", "Inbox", "i", app.pending.length),
    item("activity", "Activity", "a", unread),
    item("history", "History", "h"),
    item("accounts", "Accounts", "s"),
    h("div", { class: "spacer" }),
    h("label", { class: "toggle" },
      h("input", { type: "checkbox", checked: app.prefs.dnd, "data-testid": "dnd",
        onchange: (e) => void setPrefs({ ...app.prefs, dnd: (e.target as HTMLInputElement).checked, dnd_until: null }) }),
      app.prefs.dnd && app.prefs.dnd_until
        ? `Do not disturb until ${new Date(app.prefs.dnd_until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`
        : "Do not disturb"),
    h("label", { class: "toggle" },
      h("input", { type: "checkbox", checked: app.prefs.notify_activity,
        onchange: (e) => void setPrefs({ ...app.prefs, notify_activity: (e.target as HTMLInputElement).checked }) }),
      "Notify for activity"),
    h("label", { class: "toggle", title: "Approve and Deny buttons on a request's notification. Notifications can show on the lock screen: anyone at it could press them." },
      h("input", { type: "checkbox", checked: app.prefs.notify_actions, "data-testid": "notify-actions",
        onchange: (e) => void setPrefs({ ...app.prefs, notify_actions: (e.target as HTMLInputElement).checked }) }),
      "Decide from notifications"),
    ...(app.prefs.quiet_hours
      ? [h("div", { class: "muted quiet", "data-testid": "quiet-hours", title: "Set with: countersign notifications quiet-hours" },
        `Quiet hours ${app.prefs.quiet_hours.start.slice(0, 5)}–${app.prefs.quiet_hours.end.slice(0, 5)}`)]
      : []),
    h("div", { class: "health-summary", "data-testid": "health-summary" },
      app.accounts.length === 0
        ? "No accounts"
        : troubled.length
          ? h("span", { class: "bad" }, `${troubled.length} of ${app.accounts.length} accounts need attention`)
          : `${app.accounts.length} account${app.accounts.length === 1 ? "" : "s"} · all good`),
    h("button", { class: "link shortcuts-link", type: "button", onclick: showShortcuts }, "Keyboard shortcuts  ?"),
  );
  const logo = nav.querySelector<HTMLImageElement>("img.logo");
  if (logo) logo.src = "icon.png";
}

async function setPrefs(prefs: typeof app.prefs): Promise<void> {
  const before = app.prefs;
  try {
    app.prefs = await call("set_prefs", { prefs });
    toast(prefs.dnd !== before.dnd ? (prefs.dnd ? "Notifications paused" : "Notifications on")
      : prefs.notify_actions !== before.notify_actions
        ? (prefs.notify_actions ? "Approve and Deny now show on request notifications" : "No decide buttons on notifications")
        : prefs.notify_activity ? "Activity is notified too" : "Activity is not notified");
  } catch (e) {
    toast(errorText(e), "error");
  }
  renderNav();
}

export function show(view: View): void {
  app.view = view;
  app.cursor = 0;
  app.detail = null;
  if (view === "history") Object.assign(app.history, { rows: [], starts: [], next: null });
  renderNav();
  render();
  void reload({ requests: true, activity: view === "activity", accounts: view === "accounts", pending: 0 });
}

// ---------- views ----------

function render(): void {
  list = null;
  historyList = null;
  clear(main);
  switch (app.view) {
    case "inbox":
      renderInbox();
      break;
    case "history":
      renderHistory();
      break;
    case "activity":
      renderActivity();
      break;
    case "accounts":
      main.append(renderAccounts(() => void reload({ requests: false, activity: false, accounts: true, pending: 0 })));
      break;
  }
}

/** The rows the inbox list shows now, as of the last `refreshInbox`. */
let shownPending: RequestRow[] = [];

/** The requests the inbox shows, after the local filters. */
function visiblePending(): RequestRow[] {
  const f = app.filter;
  return app.pending.filter((r) =>
    (!f.account || r.account === f.account) &&
    (!f.platform || r.platform === f.platform) &&
    (!f.kind || r.kind === f.kind) &&
    (!f.agent || r.agent === f.agent));
}

function select(label: string, key: "account" | "platform" | "kind" | "agent", values: string[]): HTMLElement {
  const sel = h("select", { "aria-label": label, "data-testid": `filter-${key}`,
    onchange: (e) => { app.filter[key] = (e.target as HTMLSelectElement).value; app.cursor = 0; refreshInbox(); } },
    h("option", { value: "" }, `All ${label}s`),
    ...[...new Set(values)].sort().map((v) => h("option", { value: v }, words(v))));
  (sel as HTMLSelectElement).value = app.filter[key];
  return sel;
}

function renderInbox(): void {
  if (app.accounts.length === 0) {
    main.append(h("div", { class: "empty" },
      h("h2", {}, "Welcome to Countersign"),
      h("p", {}, "Add the agent platforms you review for. Their pending approvals show up here, live."),
      h("button", { class: "primary", type: "button", "data-testid": "add-first-account", onclick: () => show("accounts") }, "Add an account")));
    return;
  }
  const search = h("input", { id: "search", type: "search", placeholder: "Filter requests  /", value: app.filter.search,
    "data-testid": "search", autocomplete: "off",
    oninput: (e) => { app.filter.search = (e.target as HTMLInputElement).value; app.cursor = 0; void loadPending(); } });
  const bulk = h("div", { class: "bulk", id: "bulk" });
  main.append(
    h("div", { class: "toolbar" }, search,
      select("account", "account", app.pending.map((r) => r.account)),
      select("platform", "platform", app.pending.map((r) => r.platform)),
      select("kind", "kind", app.pending.map((r) => r.kind)),
      select("agent", "agent", app.pending.flatMap((r) => (r.agent ? [r.agent] : []))),
      h("label", { class: "toggle inline", title: "Requests you snoozed, until they come back" },
        h("input", { type: "checkbox", checked: app.filter.snoozed, "data-testid": "filter-snoozed",
          onchange: (e) => { app.filter.snoozed = (e.target as HTMLInputElement).checked; app.cursor = 0; void loadPending(); } }),
        "Snoozed"),
      bulk),
    h("div", { class: "split" },
      h("div", { class: "list", id: "list", "data-testid": "inbox-list", tabindex: "-1" }),
      h("section", { class: "detail", id: "detail" })),
  );
  list = new VirtualList(byId("list"), ROW_HEIGHT, (i) => requestRow(shownPending[i], i));
  refreshInbox();
}

function requestRow(r: RequestRow | undefined, i: number): HTMLElement {
  if (!r) return h("div");
  const checked = app.checked.has(r.id);
  return h("div", {
    class: `row${i === app.cursor ? " current" : ""}${checked ? " checked" : ""}${app.sending.has(r.id) ? " sending" : ""}`,
    "data-testid": "request-row",
    onclick: (e) => {
      if ((e.target as HTMLElement).tagName === "INPUT") return;
      app.cursor = i;
      refreshInbox();
    },
  },
  h("input", { type: "checkbox", checked, "aria-label": "Select for a bulk decision", title: "x",
    onchange: () => { toggleCheck(r.id); } }),
  h("div", { class: "row-main" },
    h("div", { class: "row-title", "data-testid": "row-title" },
      r.hidden ? h("span", { class: "badge bad", title: r.hidden, "data-testid": "hidden-badge" }, "hidden characters") : null,
      agentText(r.title || r.action)),
    h("div", { class: "row-sub" },
      h("span", { class: `platform p-${r.platform}` }, r.platform),
      h("span", {}, agentText(r.account)),
      r.group_note ? h("span", { class: "badge warn", title: r.group_note, "data-testid": "group-badge" }, groupBadge(r.group_note)) : null,
      h("span", { class: "agent" }, agentText(r.agent ?? "")),
      (r.label ?? r.kind) !== "approval" ? h("span", { class: "badge muted" }, words(r.label ?? r.kind)) : null,
      r.progress ? h("span", { class: "badge warn" }, `${r.progress.approvals}/${r.progress.required} approved`) : null,
      r.proposal ? h("span", { class: "badge muted", title: "Nobody waits on this; answering executes nothing" }, "proposal") : null,
      r.read_only ? h("span", { class: "badge muted", title: r.read_only }, "read only") : null)),
  h("div", { class: "row-time" },
    h("span", { class: "age", title: when(r.created_at), "data-created": r.created_at }, age(r.created_at)),
    r.deadline ? h("span", { class: `countdown${urgent(r.deadline) ? " urgent" : ""}`, "data-deadline": r.deadline }, countdown(r.deadline)) : null,
    r.snoozed_until && app.filter.snoozed
      ? h("span", { class: "badge muted", "data-testid": "snoozed-until", title: when(r.snoozed_until) }, `back ${short(r.snoozed_until)}`)
      : null));
}

/** When "tomorrow" means: 9:00 local time the next day. */
function tomorrowMorning(): Date {
  const d = new Date();
  d.setDate(d.getDate() + 1);
  d.setHours(9, 0, 0, 0);
  return d;
}

/** Snoozes the ticked requests, or the current one, until `until`. */
async function snoozeSelected(until: Date, label: string): Promise<void> {
  const rows = visiblePending();
  const ids = app.checked.size ? [...app.checked] : rows[app.cursor] ? [rows[app.cursor]!.id] : [];
  if (!ids.length) return;
  let done = 0;
  for (const id of ids) {
    try {
      await call("snooze", { id, until: until.toISOString() });
      done++;
      app.checked.delete(id);
    } catch (e) {
      toast(errorText(e), "error");
    }
  }
  if (done) toast(`Snoozed ${done === 1 ? "" : `${done} requests `}${label}`);
  await reload({ requests: true });
}

function toggleCheck(id: number): void {
  if (app.checked.has(id)) app.checked.delete(id);
  else app.checked.add(id);
  refreshInbox();
}

function refreshInbox(): void {
  if (app.view !== "inbox" || !list) return;
  const rows = visiblePending();
  shownPending = rows;
  app.cursor = Math.min(app.cursor, Math.max(0, rows.length - 1));
  const ids = new Set(rows.map((r) => r.id));
  for (const id of [...app.checked]) if (!ids.has(id)) app.checked.delete(id);
  list.setCount(rows.length);
  list.container.querySelector(".inbox-empty")?.remove();
  if (rows.length === 0) {
    list.container.append(h("div", { class: "empty small inbox-empty", "data-testid": "inbox-empty" },
      app.pending.length ? "Nothing matches these filters." : "Inbox zero. New requests appear here as agents ask."));
  }
  const bulk = document.getElementById("bulk");
  if (bulk) {
    bulk.replaceChildren(...(app.checked.size
      ? [h("span", {}, `${app.checked.size} selected`),
         h("button", { class: "approve", type: "button", "data-testid": "bulk-approve", onclick: () => void decideSelected("approve") }, "Approve all"),
         h("button", { class: "deny", type: "button", "data-testid": "bulk-deny", onclick: () => void decideSelected("deny") }, "Deny all"),
         h("button", { class: "link", type: "button", onclick: () => { app.checked.clear(); refreshInbox(); } }, "Clear")]
      : [h("span", { class: "muted" }, `${thousands(rows.length)} pending`)]));
  }
  list.reveal(app.cursor);
  scheduleDetail(rows[app.cursor]?.id ?? null);
}

/** The request whose detail was asked for last. */
let wanted: number | null = null;

function scheduleDetail(id: number | null): void {
  window.clearTimeout(detailTimer);
  wanted = id;
  const pane = document.getElementById("detail");
  if (!pane) return;
  if (id === null) {
    app.detail = null;
    painted = "";
    pane.replaceChildren(h("div", { class: "empty small" }, "Select a request to see everything the agent sent."));
    return;
  }
  if (app.detail?.id === id) {
    // Same request: repaint only if what it shows changed, so a refresh
    // does not reset the raw/tree toggle or the scroll position.
    if (painted !== `${id}:${app.sending.has(id)}`) paintDetail();
    return;
  }
  wanted = id;
  detailTimer = window.setTimeout(async () => {
    try {
      const d = await call("detail", { id });
      // An earlier, slower answer must not replace the one now wanted.
      if (wanted !== id) return;
      app.detail = d;
      paintDetail();
    } catch (e) {
      if (wanted === id) pane.replaceChildren(h("div", { class: "empty small error" }, errorText(e)));
    }
  }, 40);
}

/** Which request, in which sending state, the detail pane shows. */
let painted = "";

function paintDetail(): void {
  const pane = document.getElementById("detail");
  const d = app.detail;
  if (!pane || !d) return;
  // A comment being typed survives a repaint of its own request only: it
  // must never carry over to another request and be sent with it.
  const same = painted.startsWith(`${d.id}:`);
  painted = `${d.id}:${app.sending.has(d.id)}`;
  const focused = same && document.activeElement?.id === "comment";
  const text = same ? (document.getElementById("comment") as HTMLTextAreaElement | null)?.value ?? "" : "";
  const key = d.extra.group?.key;
  const siblings = key ? app.pending.filter((r) => r.account === d.account && r.group_key === key).map((r) => r.id) : [];
  const whole = siblings.length > 1 ? (input: DecideInput) => void decide(siblings, input) : undefined;
  pane.replaceChildren(renderDetail(d, app.sending.has(d.id), (input) => void decide([d.id], input), whole));
  const actions = pane.querySelector(".actions .buttons");
  if (d.status === "pending" && actions && !app.filter.snoozed) {
    actions.append(
      h("button", { type: "button", class: "link", "data-testid": "snooze-hour", title: "s",
        onclick: () => void snoozeSelected(new Date(Date.now() + 3600_000), "for an hour") }, "Snooze 1 h", h("kbd", {}, "s")),
      h("button", { type: "button", class: "link", "data-testid": "snooze-tomorrow",
        onclick: () => void snoozeSelected(tomorrowMorning(), "until tomorrow 9:00") }, "Until tomorrow"));
  }
  const comment = document.getElementById("comment") as HTMLTextAreaElement | null;
  if (comment && text) comment.value = text;
  if (comment && focused) comment.focus();
}

// ---------- deciding ----------

async function decide(ids: number[], input: DecideInput): Promise<void> {
  const todo = ids.filter((id) => !app.sending.has(id));
  if (!todo.length) return;
  todo.forEach((id) => app.sending.add(id));
  refreshInbox();
  const verb = input.outcome === "deny" ? "Denied" : input.outcome === "respond" ? "Answered" : "Approved";
  try {
    const results = await call("decide", { args: { ids: todo, ...input, comment: input.comment || undefined } });
    const failed = results.filter((r) => r.delivery === null || r.delivery === "failed");
    const held = results.filter((r) => r.delivery === "queued" && r.error?.startsWith("held:"));
    const queued = results.filter((r) => (r.delivery === "queued" || r.delivery === "sent") && !held.includes(r));
    const done = results.length - failed.length - queued.length - held.length;
    if (held.length) toast(`${verb}; ${held[0]!.error!.slice("held: ".length)}.`);
    const noted = results.filter((r) => r.delivery === "confirmed" && r.note);
    if (done) toast(`${verb} ${done === 1 ? "the request" : `${done} requests`}: delivered`);
    for (const n of noted) toast(`Request ${n.id}: ${n.note}`, "error");
    if (queued.length) toast(`${verb}, but ${queued[0]?.next_step ?? `not delivered yet (${queued[0]?.error ?? "platform unreachable"})`}.`, "warn");
    for (const f of failed) toast(`Request ${f.id}: ${f.error ?? "refused"}`, "error");
  } catch (e) {
    toast(errorText(e), "error");
  } finally {
    todo.forEach((id) => { app.sending.delete(id); app.checked.delete(id); });
    await reload({ requests: true, activity: false, accounts: false, pending: 0 });
  }
}

async function decideSelected(outcome: Outcome): Promise<void> {
  const rows = visiblePending();
  const ids = app.checked.size ? [...app.checked] : rows[app.cursor] ? [rows[app.cursor]!.id] : [];
  if (!ids.length) return;
  const comment = (document.getElementById("comment") as HTMLTextAreaElement | null)?.value.trim() ?? "";
  await decide(ids, { outcome, comment });
}

// ---------- history ----------

const HISTORY_ROW = 58;
/** Rows per history page. */
const HISTORY_PAGE = 200;
/** The next page loads when the view comes this many rows from the end. */
const NEAR_END = 60;
/** Pages kept on each side of the one in view; farther ones are dropped. */
const KEEP_PAGES = 4;
const SEARCH_DELAY = 150;
let historyList: VirtualList | null = null;
/** Bumped by each new history query; an answer to an older one is dropped. */
let historySeq = 0;
let searchTimer = 0;

/** A local date (YYYY-MM-DD) as an instant: its start, or with `end` the start of the next day. */
function dayBound(date: string, end: boolean): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return undefined;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (end ? 1 : 0)).toISOString();
}

function historyQuery(): HistoryFilter {
  const f = app.historyFilter;
  return {
    search: f.search.trim() || undefined,
    status: (f.status || undefined) as RequestRow["status"] | undefined,
    account: f.account || undefined,
    platform: (f.platform || undefined) as Platform | undefined,
    agent: f.agent || undefined,
    since: dayBound(f.from, false),
    until: dayBound(f.to, true),
    limit: HISTORY_PAGE,
  };
}

/** Fills a filter's options with `values` (plus its current choice), keeping the choice. */
function fillOptions(sel: HTMLSelectElement | null, all: string, values: string[]): void {
  if (!sel) return;
  const chosen = sel.value;
  const wanted = [...new Set([...values, ...(chosen ? [chosen] : [])])].sort();
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join("\n") === wanted.join("\n")) return;
  sel.replaceChildren(h("option", { value: "" }, all), ...wanted.map((v) => h("option", { value: v }, words(v))));
  sel.value = chosen;
}

/** The history rows held in memory: the pages not dropped (never the whole, holey list). */
function heldHistory(): RequestRow[] {
  const hs = app.history;
  const held: RequestRow[] = [];
  for (let p = 0; p < hs.starts.length; p++) {
    const from = p * HISTORY_PAGE;
    if (hs.rows[from] === undefined) continue;
    for (let i = from; i < Math.min(hs.rows.length, from + HISTORY_PAGE); i++) {
      const r = hs.rows[i];
      if (r) held.push(r);
    }
  }
  return held;
}

function historyOptions(): void {
  const rows = heldHistory();
  fillOptions(document.querySelector("[data-testid=history-account]"), "All accounts",
    [...app.accounts.map((a) => a.name), ...rows.map((r) => r.account)]);
  fillOptions(document.querySelector("[data-testid=history-platform]"), "All platforms",
    [...app.accounts.map((a) => a.platform), ...rows.map((r) => r.platform)]);
  fillOptions(document.querySelector("[data-testid=history-agent]"), "All agents",
    [...app.pending, ...rows].flatMap((r) => (r.agent ? [r.agent] : [])));
}

function renderHistory(): void {
  const f = app.historyFilter;
  const changed = () => { app.cursor = 0; void loadHistory(); };
  const search = h("input", { id: "search", type: "search", placeholder: "Search all history  /", value: f.search,
    "data-testid": "history-search", autocomplete: "off",
    oninput: (e) => {
      f.search = (e.target as HTMLInputElement).value;
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(changed, SEARCH_DELAY);
    } });
  const pick = (key: "status" | "account" | "platform" | "agent", label: string, values: string[]) => {
    const sel = h("select", { "aria-label": label, "data-testid": `history-${key}`,
      onchange: (e) => { f[key] = (e.target as HTMLSelectElement).value; changed(); } },
      h("option", { value: "" }, label), ...values.map((v) => h("option", { value: v }, words(v))));
    sel.value = f[key];
    return sel;
  };
  const day = (key: "from" | "to", label: string) => h("input", { type: "date", "aria-label": label, title: label,
    "data-testid": `history-${key}`, value: f[key],
    onchange: (e) => { f[key] = (e.target as HTMLInputElement).value; changed(); } });
  main.append(
    h("div", { class: "toolbar" }, search,
      pick("status", "Every outcome", ["approved", "denied", "expired", "resolved_elsewhere", "cancelled"]),
      pick("account", "All accounts", []), pick("platform", "All platforms", []), pick("agent", "All agents", []),
      h("span", { class: "dates" }, h("span", { class: "muted" }, "Ended"), day("from", "Ended on or after this day"), "–", day("to", "Ended on or before this day: jumps to it")),
      h("button", { class: "link", type: "button", "data-testid": "history-clear", onclick: () => {
        Object.assign(f, { search: "", status: "", account: "", platform: "", agent: "", from: "", to: "" });
        render();
        changed();
      } }, "Clear"),
      h("span", { class: "muted counts", "data-testid": "history-counts" })),
    h("div", { class: "split" },
      h("div", { class: "list", id: "history-list", "data-testid": "history-list", tabindex: "-1" }),
      h("section", { class: "detail", id: "detail" })));
  historyList = new VirtualList(byId("history-list"), HISTORY_ROW, (i) => historyRow(app.history.rows[i], i),
    (last) => {
      if (last >= app.history.rows.length - NEAR_END) void loadMoreHistory();
      keepHistoryWindow(last);
    });
  historyOptions();
  paintHistory(true);
}

function historyRow(r: RequestRow | undefined, i: number): HTMLElement {
  if (!r) return h("div", { class: "hrow muted", "data-testid": "history-placeholder" }, "Loading…");
  const ended = r.ended_at ?? r.created_at;
  return h("div", {
    class: `hrow${i === app.cursor ? " current" : ""}`, "data-testid": "history-row",
    onclick: () => { app.cursor = i; paintHistory(true); } },
  h("span", { class: `badge ${r.status === "approved" ? "good" : r.status === "denied" ? "bad" : "muted"}` }, words(r.status)),
  h("div", { class: "row-main" },
    h("div", { class: "row-title", "data-testid": "history-title" },
      r.hidden ? h("span", { class: "badge bad", title: r.hidden, "data-testid": "hidden-badge" }, "hidden characters") : null,
      h("span", { class: "agent-text" }, ...revealed(r.title || r.action, app.history.words))),
    h("div", { class: "row-sub" },
      h("span", { class: `platform p-${r.platform}` }, r.platform), h("span", {}, r.account), h("span", { class: "agent" }, r.agent ?? ""),
      r.decided_by ? h("span", {}, `by ${r.decided_by}${r.outcome ? ` (${r.outcome})` : ""}`) : null,
      r.comment ? h("span", { class: "comment" }, `“${r.comment}”`) : null)),
  h("div", { class: "row-time" }, h("span", { title: when(ended), "data-testid": "history-when", "data-ended": ended }, short(ended)),
    r.delivery && r.delivery !== "confirmed" ? h("span", { class: `badge ${r.delivery === "failed" ? "bad" : "warn"}`, title: r.delivery_error ?? "" }, r.delivery) : null,
    r.delivery_note ? h("span", { class: "badge bad", title: r.delivery_note, "data-testid": "delivery-note" }, "not as decided") : null));
}

/** Repaints the history list; `reveal` scrolls to the current row (after a move, not after a page arrives). */
function paintHistory(reveal: boolean): void {
  if (app.view !== "history" || !historyList) return;
  const hs = app.history;
  app.cursor = Math.min(app.cursor, Math.max(0, hs.rows.length - 1));
  historyList.setCount(hs.rows.length);
  historyList.container.querySelector(".history-empty")?.remove();
  if (hs.rows.length === 0 && (hs.error || !hs.loading)) {
    const f = app.historyFilter;
    const filtered = f.search || f.status || f.account || f.platform || f.agent || f.from || f.to;
    historyList.container.append(h("div", { class: `empty small history-empty${hs.error ? " error" : ""}`, "data-testid": "history-empty" },
      hs.error || (filtered ? "Nothing in history matches these filters." : "Decided and expired requests are kept here.")));
  }
  const counts = document.querySelector("[data-testid=history-counts]");
  counts?.replaceChildren(
    h("span", { "data-testid": "history-total" }, `${thousands(hs.total)} in history`), " · ",
    h("span", { "data-testid": "history-loaded", "data-held": String(heldHistory().length) },
      `${thousands(hs.rows.length)} loaded`),
    hs.loading ? " · loading…" : hs.next ? "" : hs.rows.length ? " · all shown" : "");
  if (reveal) historyList.reveal(app.cursor);
  // A current row dropped from memory (scrolled far away) keeps its detail.
  const current = hs.rows[app.cursor];
  if (current || hs.rows.length === 0) scheduleDetail(current?.id ?? null);
}

/** Loads the first page of what the toolbar asks for; `keep` stays selected if it is still there. */
async function loadHistory(keep?: number): Promise<void> {
  const seq = ++historySeq;
  const hs = app.history;
  const query = historyQuery();
  hs.loading = true;
  try {
    const page = await call("history_page", { filter: query });
    if (seq !== historySeq) return;
    Object.assign(hs, { rows: page.rows, starts: [null], refilling: new Set(), next: page.next, total: page.total, query,
      words: searchWords(query.search ?? ""), error: "" });
    const idx = keep === undefined ? -1 : page.rows.findIndex((r) => r.id === keep);
    app.cursor = Math.max(0, idx);
    if (idx < 0) app.detail = null;
  } catch (e) {
    if (seq !== historySeq) return;
    Object.assign(hs, { rows: [], next: null, error: errorText(e) });
  }
  hs.loading = false;
  historyOptions();
  paintHistory(true);
}

/** Appends the next page of the current query, unless one is on its way or the last is in. */
async function loadMoreHistory(): Promise<void> {
  const hs = app.history;
  if (hs.loading || !hs.next) return;
  const seq = historySeq;
  hs.loading = true;
  try {
    const page = await call("history_page", { filter: { ...hs.query, before: hs.next } });
    if (seq !== historySeq) return;
    hs.starts.push(hs.next);
    for (const r of page.rows) hs.rows.push(r);
    Object.assign(hs, { next: page.next, total: page.total });
  } catch (e) {
    if (seq !== historySeq) return;
    hs.next = null;
    toast(errorText(e), "error");
  }
  hs.loading = false;
  historyOptions();
  paintHistory(false);
}

/**
 * Drops the pages more than KEEP_PAGES from the one in view (`last` is the
 * last row shown) and fetches again, by its start cursor, any dropped page
 * the view has come back to.
 */
function keepHistoryWindow(last: number): void {
  const hs = app.history;
  const here = Math.floor(last / HISTORY_PAGE);
  for (let p = 0; p < hs.starts.length; p++) {
    const from = p * HISTORY_PAGE;
    const held = hs.rows[from] !== undefined;
    if (Math.abs(p - here) > KEEP_PAGES) {
      if (held) hs.rows.fill(undefined, from, Math.min(hs.rows.length, from + HISTORY_PAGE));
    } else if (!held && !hs.refilling.has(p)) {
      void refillHistory(p);
    }
  }
}

/** Fetches dropped page `p` again into its place. */
async function refillHistory(p: number): Promise<void> {
  const hs = app.history;
  const seq = historySeq;
  hs.refilling.add(p);
  try {
    const start = hs.starts[p];
    const page = await call("history_page", { filter: { ...hs.query, before: start ?? undefined } });
    if (seq !== historySeq) return;
    page.rows.slice(0, HISTORY_PAGE).forEach((r, i) => {
      const at = p * HISTORY_PAGE + i;
      if (at < hs.rows.length) hs.rows[at] = r;
    });
  } catch (e) {
    if (seq === historySeq) toast(errorText(e), "error");
  } finally {
    hs.refilling.delete(p);
  }
  if (seq === historySeq) paintHistory(false);
}

// ---------- activity ----------

function renderActivity(): void {
  main.append(
    h("div", { class: "toolbar" }, h("span", { class: "muted" }, "What agents did and reported (L2), and platform alerts. Nothing here waits for you.")),
    h("div", { class: "list table", id: "activity-list", "data-testid": "activity-list" }));
  paintActivity();
}

function paintActivity(): void {
  const box = document.getElementById("activity-list");
  if (!box) return;
  app.cursor = Math.min(app.cursor, Math.max(0, app.activity.length - 1));
  box.replaceChildren(...(app.activity.length ? app.activity.map((a, i) => {
    const current = i === app.cursor;
    return h("div", { class: `arow${current ? " current" : ""}${a.read ? "" : " unread"}`, "data-testid": "activity-row",
      onclick: () => { app.cursor = i; paintActivity(); } },
      h("div", { class: "row-main" },
        h("div", { class: "row-title" }, a.title),
        h("div", { class: "row-sub" }, h("span", { class: `platform p-${a.platform}` }, a.platform), h("span", {}, a.account),
          h("span", { class: "agent" }, a.agent ?? ""), h("span", { class: "badge muted" }, words(a.event_type.toLowerCase()))),
        current ? raw(a.details) : null),
      h("div", { class: "row-time" }, h("span", { title: when(a.occurred_at) }, `${age(a.occurred_at)} ago`)));
  }) : [h("div", { class: "empty small" }, "No activity yet.")]));
  const current = app.activity[app.cursor];
  if (current && !current.read) {
    current.read = true;
    void call("mark_activity_read", { id: current.id }).then(renderNav);
  }
  box.querySelector(".current")?.scrollIntoView({ block: "nearest" });
}

// ---------- loading ----------

async function loadPending(): Promise<void> {
  const fresh = await call("pending", { filter: { search: app.filter.search || undefined, snoozed: app.filter.snoozed } });
  // Read the selection after the wait: the user may have moved meanwhile.
  const keep = visiblePending()[app.cursor]?.id;
  app.pending = fresh;
  const idx = visiblePending().findIndex((r) => r.id === keep);
  if (idx >= 0) app.cursor = idx;
  if (app.detail && !app.pending.some((r) => r.id === app.detail?.id)) app.detail = null;
  refreshInbox();
}

async function reload(changes: Partial<Changes>): Promise<void> {
  try {
    const jobs: Promise<unknown>[] = [];
    if (changes.accounts || app.accounts.length === 0) {
      jobs.push(call("accounts", {}).then((a) => { app.accounts = a; }));
    }
    if (changes.prefs) {
      jobs.push(call("prefs", {}).then((p) => { app.prefs = p; }));
    }
    if (changes.activity || app.view === "activity") {
      jobs.push(call("activity", { limit: 500 }).then((a) => { app.activity = a; }));
    }
    await Promise.all(jobs);
    if (changes.requests) {
      if (app.view === "inbox" && !list) render();
      await loadPending();
      // A live change reloads history only while its first page is all
      // there is; deeper down it would move the rows being read.
      if (app.view === "history" && app.history.rows.length <= HISTORY_PAGE) {
        await loadHistory(app.history.rows[app.cursor]?.id);
      }
    }
    if (app.view === "activity") paintActivity();
    if (app.view === "accounts" && changes.accounts) render();
    renderNav();
  } catch (e) {
    toast(errorText(e), "error");
  }
}

// ---------- keyboard ----------

function showShortcuts(): void {
  const overlay = byId<HTMLElement>("overlay");
  const row = (k: string, what: string) => h("tr", {}, h("td", {}, h("kbd", {}, k)), h("td", {}, what));
  overlay.replaceChildren(h("div", { class: "dialog", role: "dialog", "aria-label": "Keyboard shortcuts", "data-testid": "shortcuts" },
    h("h2", {}, "Keyboard shortcuts"),
    h("table", {},
      row("j / k", "next / previous"), row("a", "approve (the selected ones, or this one)"), row("d", "deny"),
      row("c", "comment"), row("Ctrl+Enter", "approve with the comment"), row("x", "select for a bulk decision"), row("s", "snooze for an hour"),
      row("/", "search"), row("g i", "inbox"), row("g a", "activity"), row("g h", "history"), row("g s", "accounts"),
      row("Esc", "leave a field or close this"), row("?", "this list")),
    h("button", { type: "button", onclick: hideOverlay }, "Close")));
  overlay.hidden = false;
}

function hideOverlay(): void {
  byId<HTMLElement>("overlay").hidden = true;
}

let pendingG = 0;

function move(by: number): void {
  const n = app.view === "inbox" ? visiblePending().length : app.view === "history" ? app.history.rows.length : app.activity.length;
  if (!n) return;
  app.cursor = Math.max(0, Math.min(n - 1, app.cursor + by));
  if (app.view === "inbox") refreshInbox();
  else if (app.view === "history") paintHistory(true);
  else if (app.view === "activity") paintActivity();
}

document.addEventListener("keydown", (e) => {
  const target = e.target as HTMLElement;
  const typing = target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT";
  if (e.key === "Escape") {
    hideOverlay();
    if (typing) target.blur();
    return;
  }
  if (typing) {
    if (target.id === "comment" && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void decideSelected("approve");
    }
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (pendingG && Date.now() - pendingG < 1500) {
    pendingG = 0;
    const views: Record<string, View> = { i: "inbox", a: "activity", h: "history", s: "accounts" };
    const view = views[e.key];
    if (view) {
      e.preventDefault();
      show(view);
    }
    return;
  }
  switch (e.key) {
    case "g": pendingG = Date.now(); break;
    case "j": case "ArrowDown": e.preventDefault(); move(1); break;
    case "k": case "ArrowUp": e.preventDefault(); move(-1); break;
    case "a": if (app.view === "inbox") void decideSelected("approve"); break;
    case "d": if (app.view === "inbox") void decideSelected("deny"); break;
    case "s": if (app.view === "inbox" && !app.filter.snoozed) void snoozeSelected(new Date(Date.now() + 3600_000), "for an hour"); break;
    case "x": {
      const r = visiblePending()[app.cursor];
      if (app.view === "inbox" && r) toggleCheck(r.id);
      break;
    }
    case "c": {
      const c = document.getElementById("comment");
      if (c) { e.preventDefault(); c.focus(); }
      break;
    }
    case "/": {
      const s = document.getElementById("search");
      if (s) { e.preventDefault(); s.focus(); }
      break;
    }
    case "?": showShortcuts(); break;
  }
});

// ---------- live ----------

setInterval(() => {
  const now = Date.now();
  document.querySelectorAll<HTMLElement>("[data-deadline]").forEach((el) => {
    const d = el.dataset.deadline ?? null;
    el.textContent = countdown(d, now);
    el.classList.toggle("urgent", urgent(d, now));
  });
  document.querySelectorAll<HTMLElement>("[data-created]").forEach((el) => {
    el.textContent = age(el.dataset.created ?? "", now);
  });
}, 1000);

on("inbox-changed", (changes) => void reload(changes));
on("open-request", (id) => {
  app.view = "inbox";
  render();
  void loadPending().then(() => {
    const idx = visiblePending().findIndex((r) => r.id === id);
    if (idx >= 0) {
      app.cursor = idx;
      refreshInbox();
    }
  });
});

async function start(): Promise<void> {
  // Everything the first screen needs is asked for at once; the inbox
  // list (the longest) is not held up by the rest.
  const pending = call("pending", { filter: { snoozed: false } });
  try {
    [app.prefs, app.accounts] = await Promise.all([call("prefs", {}), call("accounts", {})]);
  } catch (e) {
    toast(errorText(e), "error");
  }
  if (app.accounts.length === 0) app.view = "accounts";
  try {
    app.pending = await pending;
  } catch (e) {
    toast(errorText(e), "error");
  }
  renderNav();
  render();
  await reload({ requests: false, activity: true, accounts: false, pending: 0 });
}

void start();

/** "thread “X”: 1 of 2 decided; …" → "1/2 decided". */
function groupBadge(note: string): string {
  const m = /(\d+) of (\d+) decided/.exec(note);
  return m ? `${m[1]}/${m[2]} decided` : "thread";
}
