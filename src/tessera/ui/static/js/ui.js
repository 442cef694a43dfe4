// Small DOM helpers: build elements without innerHTML so data is never parsed as markup.

/** h("div.card#x", {attrs}, ...children) */
export function h(tag, attrs, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || "div");
  for (const part of rest) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else if (part[0] === "#") el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "selected" || k === "disabled") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let uid = 0;
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled control: field("Label", input) → <div.field><label for>…</label>input</div> */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId();
  return h("div.field", h("label", { for: control.id }, label), control, hint ? h("small.muted", hint) : null);
}

export function select(options, value, attrs = {}) {
  const el = h("select", attrs);
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    el.append(h("option", { value: v, selected: String(v) === String(value) }, text));
  }
  return el;
}

export function fmtNumber(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}

/** Epoch ms (or seconds-like small numbers from the simulator) or ISO text → readable UTC. */
export function fmtTime(t) {
  if (t === null || t === undefined || t === "") return "–";
  if (typeof t === "number" && t < 1e11) return `t${t}`;
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

export function table(headers, rows, caption) {
  return h(
    "div.table-wrap",
    h(
      "table",
      caption ? h("caption", caption) : null,
      h("thead", h("tr", headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", rows.map((r) => h("tr", r.map((c) => h("td", c))))),
    ),
  );
}

export function card(title, ...body) {
  return h("section.card", { "aria-label": title }, h("h2", title), ...body);
}

/** Render an API error body ({detail, report}) as an alert. */
export function errorBox(err) {
  const detail = err && err.detail ? err.detail : String(err && err.message ? err.message : err);
  const path = err && err.report && err.report.path ? ` (at ${err.report.path})` : "";
  return h("div.alert", { role: "alert" }, `${err && err.title ? err.title + ": " : ""}${detail}${path}`);
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

export function bar(value, max, label) {
  const pct = max > 0 ? Math.max(1, Math.round((value / max) * 100)) : 0;
  return h(
    "div.bar",
    { role: "img", "aria-label": `${label}: ${fmtNumber(value)}` },
    h("span.bar-fill", { style: `width:${pct}%` }),
    h("span.bar-text", `${label}  ${fmtNumber(value)}`),
  );
}
