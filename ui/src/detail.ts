// The detail pane: everything the platform sent about one request, and the
// decisions this platform allows for it.

import { agentText, revealed } from "./text";
import { h } from "./dom";
import { age, countdown, when, words } from "./format";
import { raw, tree } from "./json";
import type { Outcome } from "./bindings/Outcome";
import type { RequestDetail } from "./bindings/RequestDetail";
import type { JsonValue } from "./bindings/serde_json/JsonValue";

export interface DecideInput {
  outcome: Outcome;
  comment: string;
  edited_arguments?: JsonValue;
  response?: string;
}

function field(label: string, value: Node | string | null | undefined): HTMLElement | null {
  if (value === null || value === undefined || value === "") return null;
  return h("div", { class: "field" }, h("span", { class: "label" }, label),
    h("span", { class: "value" }, typeof value === "string" ? agentText(value) : value));
}

function badge(text: string, kind: string): HTMLElement {
  return h("span", { class: `badge ${kind}` }, words(text));
}

export function renderDetail(
  d: RequestDetail,
  sending: boolean,
  decide: (input: DecideInput) => void,
  /** Decides every pending request of this one's group (a thread), when it has others. */
  decideGroup?: (input: DecideInput) => void,
): HTMLElement {
  const pending = d.status === "pending";
  const allowed = new Set(d.allowed_decisions);
  let showRaw = false;
  const argsBox = h("div", { class: "args" }, tree(d.arguments));
  const toggle = h("button", { class: "link", type: "button", "data-testid": "toggle-raw" }, "Show raw JSON");
  toggle.addEventListener("click", () => {
    showRaw = !showRaw;
    toggle.textContent = showRaw ? "Show as tree" : "Show raw JSON";
    argsBox.replaceChildren(showRaw ? raw(d.raw) : tree(d.arguments));
  });

  const comment = h("textarea", {
    id: "comment",
    placeholder: "Comment (optional) — c to focus, Ctrl+Enter approves",
    "data-testid": "comment",
    spellcheck: "true",
  });
  const comment_value = () => comment.value.trim();
  const actions = h("div", { class: "actions" });
  const x = d.extra;
  if (pending && x.read_only) {
    actions.append(h("p", { class: "notice", "data-testid": "read-only" }, `You cannot answer this request. ${x.read_only}`));
  }
  if (x.group && d.group_note) {
    actions.append(h("p", { class: "notice", "data-testid": "group-note" },
      `${d.platform === "surfsense" ? "SurfSense" : "The platform"} resumes the ${x.group.label} only when all its requests are decided; `
      + `decisions are held here and sent together (${d.group_note.slice(x.group.label.length + 2).split(";")[0]}).`));
  }
  if (pending && x.proposal) {
    actions.append(h("p", { class: "notice", "data-testid": "proposal" },
      "Proposal: the agent does not wait for this. Answering records your decision; nothing is executed."));
  }
  if (pending && allowed.size > 0) {
    const busy = sending ? h("span", { class: "sending", "data-testid": "sending" }, "Sending decision…") : null;
    actions.append(
      comment,
      h(
        "div",
        { class: "buttons" },
        allowed.has("approve")
          ? h("button", { class: "approve", type: "button", "data-testid": "approve", disabled: sending,
              onclick: () => decide({ outcome: "approve", comment: comment_value() }) }, d.kind === "escalation" ? "Accept" : "Approve", h("kbd", {}, "a"))
          : null,
        allowed.has("deny")
          ? h("button", { class: "deny", type: "button", "data-testid": "deny", disabled: sending,
              onclick: () => decide({ outcome: "deny", comment: comment_value() }) }, "Deny", h("kbd", {}, "d"))
          : null,
        allowed.has("always_allow")
          ? h("button", { type: "button", title: "Approve this and matching requests from now on", disabled: sending,
              onclick: () => decide({ outcome: "always_allow", comment: comment_value() }) }, "Always allow")
          : null,
        busy,
      ),
    );
    if (decideGroup && x.group) {
      actions.append(h("div", { class: "buttons group" },
        h("span", { class: "label" }, `Whole ${x.group.label}:`),
        allowed.has("approve") ? h("button", { type: "button", "data-testid": "group-approve", disabled: sending,
          onclick: () => decideGroup({ outcome: "approve", comment: comment_value() }) }, "Approve all") : null,
        allowed.has("deny") ? h("button", { type: "button", "data-testid": "group-deny", disabled: sending,
          onclick: () => decideGroup({ outcome: "deny", comment: comment_value() }) }, "Deny all") : null));
    }
    if (allowed.has("respond")) {
      actions.append(answerForm(d, (response) => decide({ outcome: "respond", comment: comment_value(), response })));
    }
    if (allowed.has("edit")) {
      const edited = h("textarea", { class: "mono", value: JSON.stringify(d.arguments, null, 2), "data-testid": "edit-args" });
      const err = h("span", { class: "error" });
      const merged = d.platform === "surfsense" ? " (SurfSense merges the keys you send over the original ones; a removed key keeps its value)" : "";
      actions.append(h("div", { class: "extra" }, h("span", { class: "label" }, `Edit arguments, then approve${merged}`), edited, err,
        h("button", { type: "button", onclick: () => {
          try {
            decide({ outcome: "edit", comment: comment_value(), edited_arguments: JSON.parse(edited.value) as JsonValue });
          } catch (e) {
            err.textContent = `Not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
          }
        } }, "Approve with edits")));
    }
    if (allowed.has("always_allow")) {
      const always = x.facts.find((f) => f.name === "always allows");
      const what = always && Array.isArray(always.value) ? always.value.join(", ") : "matching requests";
      actions.append(h("p", { class: "hint", "data-testid": "always-hint" }, d.platform === "opencode"
        ? `Always allow runs this and lets ${what} through without asking, in every session of this project, until the OpenCode server restarts. Requests already waiting in other sessions stay.`
        : "Always allow approves this and lets matching requests through from now on, without asking."));
    }
    if (d.platform === "langgraph" && x.label === "Agent Inbox" && allowed.has("deny")) {
      actions.append(h("p", { class: "hint" }, "Deny sends Agent Inbox's “ignore”: the graph skips the action."));
    }
    if (d.platform === "opencode") {
      actions.append(h("p", { class: "hint" },
        "Deny with a comment: the agent reads it as feedback and goes on. Deny without one: the agent stops, and the session's other requests are denied too."));
    }
    const noComments: Partial<Record<RequestDetail["platform"], string>> = { molecule: "Molecule AI", clawith: "Clawith" };
    const name = noComments[d.platform];
    if (x.comment_not_sent) {
      actions.append(h("p", { class: "hint", "data-testid": "comment-not-sent" },
        `${d.platform === "surfsense" ? "SurfSense drops decision comments, reject feedback included" : "This platform takes no comments"}: yours stays in Countersign's history only.`));
    } else if (name) {
      actions.append(h("p", { class: "hint" }, `${name} keeps no comments: yours stays in Countersign's history.`));
    }
  }

  const decisions = d.decisions.length
    ? h("div", { class: "decisions" }, h("h3", {}, "Decisions"),
        ...d.decisions.map((x) => h("div", { class: "decision" },
          badge(x.outcome, x.outcome === "deny" ? "bad" : "good"), " by ", x.decided_by, " · ", when(x.decided_at), " · ",
          badge(x.delivery, x.delivery === "confirmed" ? "good" : x.delivery === "failed" ? "bad" : "warn"),
          x.error ? h("span", { class: "error" }, ` ${x.error}`) : null,
          x.note ? h("div", { class: "decision-note", "data-testid": "decision-note" }, `⚠ ${x.note}`) : null,
          x.comment ? h("div", { class: "comment" }, x.comment) : null)))
    : null;

  const reports = d.reports.length
    ? h("section", { class: "reports", "data-testid": "reports" }, h("h3", {}, "Reported by the platform"),
        ...d.reports.map((r) => {
          const body = r.details && typeof r.details === "object" && !Array.isArray(r.details) ? r.details["body"] : null;
          return h("div", { class: "report" },
            h("div", {}, h("strong", {}, r.title), h("span", { class: "muted" }, ` · ${when(r.occurred_at)}`)),
            typeof body === "string" ? h("div", { class: "report-body" }, body) : null);
        }))
    : null;

  return h(
    "article",
    { class: "detail-body", "data-testid": "detail" },
    h("header", {},
      h("h2", { "data-testid": "detail-title" }, agentText(d.title || d.action || "(untitled request)")),
      h("div", { class: "sub" },
        badge(d.status, pending ? "warn" : d.status === "approved" ? "good" : d.status === "denied" ? "bad" : "muted"),
        h("span", {}, agentText(d.agent ?? "unknown agent"), ` · ${d.account} (${d.platform})`),
        d.deadline && pending ? h("span", { class: "countdown", "data-deadline": d.deadline }, countdown(d.deadline)) : null)),
    d.hidden ? h("section", { class: "hidden-warning", role: "alert", "data-testid": "hidden-warning" },
      h("strong", {}, "This request's text hides something. "),
      "What is shown below marks each hidden character as ⟨U+…⟩; read it as marked before deciding. ",
      h("span", { class: "muted" }, ...revealed(d.hidden))) : null,
    d.description ? h("section", { class: "reason" }, h("h3", {}, "Reason"), h("p", { "data-testid": "detail-reason" }, agentText(d.description, true))) : null,
    x.progress ? h("section", { class: "progress", "data-testid": "progress" },
      h("strong", {}, `${x.progress.approvals} of ${x.progress.required} approvals`),
      x.progress.approvers.length ? h("span", { class: "muted" }, ` · ${x.progress.approvers.join(", ")}`) : null,
      h("meter", { min: "0", max: String(x.progress.required), value: String(x.progress.approvals) })) : null,
    h("section", { class: "facts" },
      field("Action", d.action),
      field("Kind", words(x.label ?? d.kind)),
      field("Tier / risk", d.tier),
      field("Requested", h("span", {}, `${when(d.created_at)} (`,
        h("span", { "data-created": d.created_at }, age(d.created_at)), " ago)")),
      field("Deadline", d.deadline ? when(d.deadline) : null),
      field("Ended", d.ended_at ? when(d.ended_at) : null),
      field("Decided by", d.decided_by),
      field("Outcome", d.outcome),
      field("Comment", d.comment),
      field("Remote id", d.remote_id),
      field("Link", d.link),
      ...x.facts.map((f) => field(f.name, factText(f.value) ?? tree(f.value)))),
    h("section", {}, h("div", { class: "section-head" }, h("h3", {}, "Arguments"), toggle), argsBox),
    decisions,
    reports,
    actions,
  );
}

/** Simple JSON-schema types get a typed input; anything else a JSON box. */
function answerForm(d: RequestDetail, send: (response: string) => void): HTMLElement {
  const schema = d.extra.answer_schema;
  const obj = schema && typeof schema === "object" && !Array.isArray(schema) ? schema : null;
  const type = obj && typeof obj["type"] === "string" ? obj["type"] : null;
  const choices = obj && Array.isArray(obj["enum"]) ? obj["enum"] : null;
  // harn takes any JSON value as the answer; other platforms plain text.
  const json = d.platform === "harn" || schema !== null;
  const err = h("span", { class: "error", "data-testid": "answer-error" });
  let input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;
  let read: () => string;
  if (choices) {
    const sel = h("select", { "data-testid": "answer-input" }, ...choices.map((c) => h("option", { value: JSON.stringify(c) }, typeof c === "string" ? c : JSON.stringify(c))));
    input = sel;
    read = () => sel.value;
  } else if (type === "boolean") {
    const sel = h("select", { "data-testid": "answer-input" }, h("option", { value: "true" }, "yes"), h("option", { value: "false" }, "no"));
    input = sel;
    read = () => sel.value;
  } else if (type === "integer" || type === "number") {
    const num = h("input", { type: "number", step: type === "integer" ? "1" : "any", "data-testid": "answer-input" });
    input = num;
    read = () => {
      if (num.value.trim() === "") throw new Error("enter a number");
      return JSON.stringify(Number(num.value));
    };
  } else if (type === "string" || !json || !schema) {
    const text = h("textarea", { placeholder: "Your answer", "data-testid": "answer-input" });
    input = text;
    read = () => (json ? JSON.stringify(text.value) : text.value);
  } else {
    const text = h("textarea", { class: "mono", placeholder: "Your answer as JSON", "data-testid": "answer-input" });
    input = text;
    read = () => {
      JSON.parse(text.value);
      return text.value;
    };
  }
  const label = schema ? `Answer (${type ?? "JSON"}${choices ? ", one of the choices" : ""})` : "Answer";
  return h("div", { class: "extra answer" }, h("span", { class: "label" }, label), input, err,
    schema ? h("details", {}, h("summary", {}, "Schema"), tree(schema)) : null,
    h("button", { type: "button", class: "primary", "data-testid": "answer-send", onclick: () => {
      try {
        err.textContent = "";
        send(read());
      } catch (e) {
        err.textContent = e instanceof Error ? e.message : String(e);
      }
    } }, "Send answer"));
}

/** Strings, numbers and lists of them read better as text than as a tree. */
function factText(v: JsonValue): string | null {
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v) && v.every((i) => typeof i === "string" || typeof i === "number")) return v.join(", ");
  return null;
}
