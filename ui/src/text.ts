// Agent-written text as DOM text nodes, never HTML. Characters that
// reorder or hide text (bidi controls, zero-width and other invisible
// format characters, control characters) are shown as a visible ⟨U+…⟩
// marker, so a title cannot pass itself off as another. Search words can be
// marked in it with <mark> elements.

import { h } from "./dom";

const HIDDEN = /[\p{Cc}\p{Cf}\u115F\u1160\u3164\uFFA0]/gu;

/** The words a search matches, as the store splits them (prefix matches). */
export function searchWords(search: string): string[] {
  return search.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0);
}

function escape(w: string): string {
  return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `s` as text nodes, with each word start that matches one of `words` in a <mark>. */
function marked(s: string, words: string[]): Node[] {
  if (!words.length) return [document.createTextNode(s)];
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${words.map(escape).join("|")})`, "giu");
  const out: Node[] = [];
  let at = 0;
  for (const m of s.matchAll(re)) {
    const start = m.index ?? 0;
    if (!m[0]) continue;
    if (start > at) out.push(document.createTextNode(s.slice(at, start)));
    out.push(h("mark", {}, m[0]));
    at = start + m[0].length;
  }
  if (at < s.length) out.push(document.createTextNode(s.slice(at)));
  return out;
}

/** Untrusted text, hidden characters revealed, `words` marked. */
export function revealed(s: string, words: string[] = []): Node[] {
  return reveal(s, words, false);
}

/** {@link revealed} for multi-line text: line breaks and tabs stay. */
export function revealedLines(s: string): Node[] {
  return reveal(s, [], true);
}

/**
 * Untrusted text in its own bidi-isolated span, hidden characters
 * revealed: it can neither reorder its neighbours nor itself.
 */
export function agentText(s: string, lines = false): HTMLElement {
  return h("span", { class: "agent-text" }, ...reveal(s, [], lines));
}

function reveal(s: string, words: string[], keepLines: boolean): Node[] {
  const out: Node[] = [];
  let at = 0;
  for (const m of s.matchAll(HIDDEN)) {
    const start = m.index ?? 0;
    if (keepLines && (m[0] === "\n" || m[0] === "\t")) continue;
    if (start > at) out.push(...marked(s.slice(at, start), words));
    const code = (m[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
    out.push(h("span", { class: "hidden-char", title: "An invisible or direction-changing character the agent sent" }, `⟨U+${code}⟩`));
    at = start + m[0].length;
  }
  if (at < s.length) out.push(...marked(s.slice(at), words));
  return out;
}
