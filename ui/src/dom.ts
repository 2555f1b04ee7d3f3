// Builds DOM from data. Everything agents write is set as text, never as
// HTML: there is no innerHTML anywhere in the UI.

type Child = Node | string | null | undefined | false;

export interface Attrs {
  class?: string;
  title?: string;
  id?: string;
  type?: string;
  value?: string;
  placeholder?: string;
  role?: string;
  tabindex?: string;
  "data-testid"?: string;
  "data-deadline"?: string;
  "data-created"?: string;
  "data-ended"?: string;
  /** History rows held in memory (the rest were dropped, to be fetched again). */
  "data-held"?: string;
  "aria-label"?: string;
  for?: string;
  name?: string;
  autocomplete?: string;
  spellcheck?: string;
  min?: string;
  max?: string;
  step?: string;
  checked?: boolean;
  disabled?: boolean;
  onclick?: (e: MouseEvent) => void;
  oninput?: (e: Event) => void;
  onchange?: (e: Event) => void;
  onkeydown?: (e: KeyboardEvent) => void;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value as EventListener);
    } else if (key === "checked" || key === "disabled") {
      (el as unknown as Record<string, boolean>)[key] = Boolean(value);
    } else if (key === "value") {
      (el as unknown as { value: string }).value = String(value);
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el: HTMLElement, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

export function clear(el: HTMLElement): void {
  el.replaceChildren();
}

export function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}
