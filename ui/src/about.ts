// The About section at the foot of the Accounts view: the version, where
// the data lives and how much room it takes, and the "Open at login"
// switch (off by default; an app started at login waits in the tray).

import { call, errorText } from "./ipc";
import { h } from "./dom";
import { bytes, thousands } from "./format";

export function renderAbout(): HTMLElement {
  const version = h("span", { "data-testid": "about-version" }, "Countersign");
  const store = h("div", { class: "muted store-size", "data-testid": "store-size" }, "Local store: …");
  const login = h("input", { type: "checkbox", "data-testid": "open-at-login", disabled: true });
  const problem = h("div", { class: "error", role: "alert", "data-testid": "open-at-login-error" });
  login.addEventListener("change", () => {
    const want = login.checked;
    login.disabled = true;
    problem.textContent = "";
    call("set_open_at_login", { on: want })
      .then((on) => { login.checked = on; })
      .catch((e: unknown) => { login.checked = !want; problem.textContent = errorText(e); })
      .finally(() => { login.disabled = false; });
  });
  call("about", {}).then((a) => {
    version.textContent = `Countersign ${a.version}`;
    store.textContent = `Local store: ${bytes(a.store_bytes)} in ${a.data_dir}`;
    store.title = `${thousands(a.store_bytes)} bytes`;
    login.checked = a.open_at_login;
    login.disabled = false;
  }).catch((e: unknown) => { store.textContent = `Local store: ${errorText(e)}`; });
  return h("section", { class: "about", "data-testid": "about" },
    h("h3", {}, "About"),
    h("div", {}, version),
    store,
    h("label", { class: "toggle", title: "Start Countersign, hidden in the tray, when you log in" },
      login, "Open at login"),
    problem);
}
