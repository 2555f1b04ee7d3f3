// Agent-supplied JSON as a readable tree and as raw text. Both are plain
// text nodes, with bidi and invisible characters in keys and strings shown
// as markers; huge values are cut with a note, never rendered whole.

import { h } from "./dom";
import { revealed, revealedLines } from "./text";
import type { JsonValue } from "./bindings/serde_json/JsonValue";

const MAX_CHILDREN = 200;
const MAX_DEPTH = 12;
const MAX_STRING = 4000;
const MAX_RAW = 200_000;

function scalar(v: JsonValue): HTMLElement {
  if (v === null) return h("span", { class: "j-null" }, "null");
  if (typeof v === "string") {
    const s = v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}… (${v.length - MAX_STRING} more characters)` : v;
    return h("span", { class: "j-str" }, ...revealedLines(s));
  }
  if (typeof v === "number") return h("span", { class: "j-num" }, String(v));
  return h("span", { class: "j-bool" }, String(v));
}

function node(v: JsonValue | undefined, depth: number): HTMLElement {
  if (v === undefined) return h("span", { class: "j-null" }, "—");
  if (typeof v !== "object" || v === null) return scalar(v);
  const entries: [string, JsonValue | undefined][] = Array.isArray(v)
    ? v.map((x, i) => [String(i), x])
    : Object.entries(v);
  if (entries.length === 0) return h("span", { class: "j-null" }, Array.isArray(v) ? "[ ]" : "{ }");
  if (depth >= MAX_DEPTH) return h("span", { class: "j-null" }, "… (nested too deep; see raw JSON)");
  const list = h("ul", { class: "j-list" });
  for (const [k, child] of entries.slice(0, MAX_CHILDREN)) {
    list.append(h("li", {}, h("span", { class: "j-key" }, ...revealed(k)), node(child, depth + 1)));
  }
  if (entries.length > MAX_CHILDREN) {
    list.append(h("li", { class: "j-null" }, `… ${entries.length - MAX_CHILDREN} more`));
  }
  return list;
}

export function tree(v: JsonValue): HTMLElement {
  const empty = v === null || (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0);
  return h("div", { class: "json-tree", "data-testid": "args-tree" },
    empty ? h("span", { class: "j-null" }, "No arguments") : node(v, 0));
}

export function raw(v: unknown): HTMLElement {
  let text = JSON.stringify(v, null, 2) ?? "null";
  if (text.length > MAX_RAW) text = `${text.slice(0, MAX_RAW)}\n… (${text.length - MAX_RAW} more characters)`;
  return h("pre", { class: "json-raw", "data-testid": "raw-json" }, ...revealedLines(text));
}
