// The Accounts view: each account's health, retry, edit, remove, and the
// form to add one. Secrets go to the OS keychain; they are never shown.

import { call, errorText, isIpcError } from "./ipc";
import { h } from "./dom";
import { renderAbout } from "./about";
import { when, words } from "./format";
import { app } from "./store";
import type { AccountView } from "./bindings/AccountView";
import type { Platform } from "./bindings/Platform";
import type { SecretStoreKind } from "./bindings/SecretStoreKind";

const PLATFORMS: { id: Platform; label: string; ready: boolean }[] = [
  { id: "molecule", label: "Molecule AI", ready: true },
  { id: "clawith", label: "Clawith", ready: true },
  { id: "harn", label: "harn", ready: true },
  { id: "surfsense", label: "SurfSense", ready: true },
  { id: "langgraph", label: "LangGraph", ready: true },
  { id: "opencode", label: "OpenCode", ready: true },
];

function stateClass(a: AccountView): string {
  switch (a.state) {
    case "connected": return "good";
    case "polling": return a.last_error ? "warn" : "good";
    case "auth_failed": return "bad";
    case "backing_off": return "warn";
    default: return "muted";
  }
}

function setting(a: AccountView | null, key: string): string {
  const s = a?.settings;
  if (s && typeof s === "object" && !Array.isArray(s)) {
    const v = (s as Record<string, unknown>)[key];
    if (typeof v === "string") return v;
  }
  return "";
}

function form(existing: AccountView | null, done: () => void): HTMLElement {
  const input = (name: string, label: string, value: string, attrs: Record<string, string> = {}) => {
    const el = h("input", { name, value, id: `f-${name}`, "data-testid": `account-${name}`, autocomplete: "off", ...attrs });
    return [el, h("label", { for: `f-${name}` }, label, el)] as const;
  };
  const platform = h("select", { id: "f-platform", "data-testid": "account-platform", disabled: existing !== null },
    ...PLATFORMS.map((p) => h("option", { value: p.id, disabled: !p.ready }, p.ready ? p.label : `${p.label} (coming soon)`)));
  platform.value = existing?.platform ?? "molecule";
  const [name, nameLabel] = input("name", "Name", existing?.name ?? "", { placeholder: "prod" });
  const [url, urlLabel] = input("url", "Server URL", existing?.url ?? "", { placeholder: "https://acme.moleculesai.app" });
  const [token, tokenLabel] = input("token", "", "", { type: "password" });
  const [login, loginLabel] = input("login", "Username or email", setting(existing, "login"), { placeholder: "dana@example.org" });
  const [tenant, tenantLabel] = input("tenant", "Company (only if you belong to several: id, slug or name)", setting(existing, "tenant"));
  const [reviewer, reviewerLabel] = input("reviewer", "Decide as", existing?.reviewer ?? "", { placeholder: "your name, sent as decided_by" });
  const [origin, originLabel] = input("ws_origin", "WebSocket origin (if the server sets CORS_ORIGINS)", setting(existing, "ws_origin"));
  const [org, orgLabel] = input("org_id", "Org id (SaaS tenants)", setting(existing, "org_id"));
  const fileStore = h("input", { type: "checkbox", id: "f-file-store", "data-testid": "account-file-store" });
  const fileLabel = h("label", { class: "check", for: "f-file-store" }, fileStore,
    "Keep the token in a private file in the data dir (only when no OS keychain runs)");
  const error = h("div", { class: "error", role: "alert", "data-testid": "account-error" });
  const save = h("button", { class: "primary", type: "submit", "data-testid": "account-save" }, existing ? "Save" : "Add account");

  const el = h("form", { class: "account-form", "data-testid": "account-form" },
    h("h3", {}, existing ? `Edit ${existing.name}` : "Add an account"),
    h("label", { for: "f-platform" }, "Platform", platform),
    nameLabel, urlLabel, loginLabel, tenantLabel, tokenLabel, reviewerLabel, originLabel, orgLabel, fileLabel, error,
    h("div", { class: "buttons" }, save,
      h("button", { type: "button", class: "link", onclick: done }, "Cancel")));
  // Show the fields the chosen platform uses.
  const fit = () => {
    const clawith = platform.value === "clawith";
    const harn = platform.value === "harn";
    const surf = platform.value === "surfsense";
    const oc = platform.value === "opencode";
    const lg = platform.value === "langgraph";
    loginLabel.hidden = !clawith && !surf && !oc;
    loginLabel.firstChild!.textContent = surf ? "Email (leave empty with a personal access token)"
      : oc ? "User (only if the server sets OPENCODE_SERVER_USERNAME)" : "Username or email";
    login.placeholder = surf ? "kim@example.net" : oc ? "opencode" : "dana@example.org";
    tenantLabel.hidden = !clawith;
    originLabel.hidden = clawith || harn || surf || oc || lg;
    orgLabel.hidden = clawith || harn || surf || oc || lg;
    const keep = existing ? " (leave empty to keep the stored one)" : "";
    tokenLabel.firstChild!.textContent = (clawith ? "Password" : harn ? "API key (only for harn serve api)"
      : surf ? "Password, or a personal access token (ss_pat_…)"
      : oc ? "Server password (OPENCODE_SERVER_PASSWORD; empty if none)"
      : lg ? "API key (LangGraph Platform; empty for langgraph dev)" : "Admin or org API token") + keep;
    urlLabel.firstChild!.textContent = harn ? "Event log path (project dir, .harn dir or events.sqlite) or harn serve api URL"
      : surf ? "Backend URL (the API, not the web app)" : "Server URL";
    url.placeholder = clawith ? "https://clawith.example.org" : harn ? "/home/me/agents/.harn/events.sqlite"
      : surf ? "https://surfsense.example.org:8000" : oc ? "http://127.0.0.1:4096"
      : lg ? "http://127.0.0.1:2024" : "https://acme.moleculesai.app";
    reviewer.placeholder = clawith || surf ? "shown in your history; defaults to the login"
      : harn ? "your reviewer name; must be on a request's reviewer list" : "your name, sent to Molecule AI as decided_by";
  };
  platform.addEventListener("change", fit);
  fit();
  el.addEventListener("submit", (e) => {
    e.preventDefault();
    const settings: Record<string, string> = {};
    if (platform.value === "clawith") {
      settings.login = login.value.trim();
      if (tenant.value.trim()) settings.tenant = tenant.value.trim();
    } else if (platform.value === "surfsense" || platform.value === "opencode") {
      if (login.value.trim()) settings.login = login.value.trim();
    } else {
      if (origin.value.trim()) settings.ws_origin = origin.value.trim();
      if (org.value.trim()) settings.org_id = org.value.trim();
    }
    save.disabled = true;
    error.textContent = "";
    const store: SecretStoreKind = fileStore.checked ? "file" : "keychain";
    call("save_account", { form: {
      id: existing?.id, name: name.value, platform: platform.value as Platform, url: url.value,
      reviewer: reviewer.value || undefined, secret: token.value || undefined, secret_store: store, settings,
    } }).then(() => done()).catch((err: unknown) => {
      error.textContent = errorText(err);
      if (isIpcError(err) && err.code === "no_keychain") fileLabel.classList.add("highlight");
      save.disabled = false;
    });
  });
  return el;
}

export function renderAccounts(changed: () => void): HTMLElement {
  const holder = h("div", { class: "accounts-view" });
  const paint = (editing: AccountView | null | "new") => {
    const cards = app.accounts.map((a) => h("div", { class: "account", "data-testid": "account-card" },
      h("div", { class: "account-head" },
        h("span", { class: `dot ${stateClass(a)}` }),
        h("strong", {}, a.name),
        h("span", { class: `platform p-${a.platform}` }, a.platform),
        h("span", { class: "muted" }, a.url)),
      h("div", { class: `health ${stateClass(a)}`, "data-testid": "account-health" }, words(a.health)),
      h("div", { class: "muted" },
        `${a.pending} pending · decides as ${a.reviewer} · ${a.secret_store === "none" ? "no secret" : a.secret_store === "keychain" ? "token in the OS keychain" : "token in a private file"}`,
        a.last_sync_at ? ` · last synced ${when(a.last_sync_at)}` : ""),
      h("div", { class: "buttons" },
        h("button", { type: "button", "data-testid": "account-retry", onclick: () => void call("retry_account", { id: a.id }).then(changed) }, "Retry now"),
        h("button", { type: "button", onclick: () => paint(a) }, "Edit"),
        h("button", { type: "button", class: "deny", onclick: () => {
          if (confirm(`Remove ${a.name}? Its history stays.`)) {
            void call("remove_account", { name: a.name }).then(changed).catch((e: unknown) => alert(errorText(e)));
          }
        } }, "Remove"))));
    holder.replaceChildren(
      h("div", { class: "toolbar" }, h("h2", {}, "Accounts"),
        h("button", { class: "primary", type: "button", "data-testid": "add-account", onclick: () => paint("new") }, "Add account")),
      h("div", { class: "accounts-body" },
        h("div", { class: "account-list" }, ...(cards.length ? cards : [h("div", { class: "empty small" },
          "No accounts yet. Add one to start receiving approval requests.")])),
        editing ? form(editing === "new" ? null : editing, () => { paint(null); changed(); }) : null),
      renderAbout());
  };
  paint(app.accounts.length === 0 ? "new" : null);
  return holder;
}
