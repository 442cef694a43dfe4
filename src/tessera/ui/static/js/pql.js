// Rules ⇄ PQL. Rules are a tree of groups (and/or) over attribute, event-count, sequence and
// segment-membership conditions; toPql writes PQL text, fromPql reads it back where the shape
// allows (any other piece becomes a "PQL" condition kept verbatim, so nothing is lost).

export const OPS = {
  string: [["equals", "equals"], ["notEquals", "does not equal"], ["contains", "contains"], ["startsWith", "starts with"],
    ["endsWith", "ends with"], ["in", "is one of"], ["exists", "exists"], ["missing", "is missing"]],
  integer: [["=", "="], ["!=", "≠"], [">", ">"], [">=", "≥"], ["<", "<"], ["<=", "≤"], ["exists", "exists"], ["missing", "is missing"]],
  boolean: [["isTrue", "is true"], ["isFalse", "is false"], ["exists", "exists"], ["missing", "is missing"]],
  date: [["before", "before"], ["after", "after"], ["on", "on"], ["lastDays", "in the last N days"], ["exists", "exists"], ["missing", "is missing"]],
};
OPS.number = OPS.integer;
OPS["date-time"] = OPS.date;

export const QUANTIFIERS = [["atLeast", "at least"], ["atMost", "at most"], ["exactly", "exactly"], ["none", "no"]];

export const newGroup = (op = "and") => ({ type: "group", op, children: [] });

const str = (v) => JSON.stringify(String(v ?? ""));

function literal(value, type) {
  if (type === "integer" || type === "number") {
    const n = Number(value);
    return Number.isFinite(n) && String(value).trim() !== "" ? String(n) : str(value);
  }
  return str(value);
}

function dateLit(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value || "");
  if (!m) return "date(1970, 1, 1)";
  return `date(${Number(m[1])}, ${Number(m[2])}, ${Number(m[3])})`;
}

function windowText(w) {
  return w && Number(w.n) > 0 ? `<= ${Number(w.n)} ${w.unit || "days"} before now` : "";
}

export function condToPql(c) {
  switch (c.type) {
    case "attr": {
      const p = c.path;
      const t = c.fieldType || "string";
      switch (c.op) {
        case "exists": return `${p}.isNotNull()`;
        case "missing": return `${p}.isNull()`;
        case "equals": return `${p} = ${literal(c.value, t)}`;
        case "notEquals": return `${p} != ${literal(c.value, t)}`;
        case "contains": case "startsWith": case "endsWith": return `${p}.${c.op}(${str(c.value)})`;
        case "in": return `${p} in [${String(c.value || "").split(",").map((x) => x.trim()).filter(Boolean).map(str).join(", ")}]`;
        case "isTrue": return `${p} = true`;
        case "isFalse": return `${p} = false`;
        case "before": case "after": case "on": return `${p} occurs ${c.op} ${dateLit(c.value)}`;
        case "lastDays": return `${p} occurs <= ${Number(c.value) || 0} days before now`;
        default: return `${p} ${c.op} ${literal(c.value, t)}`;
      }
    }
    case "event": {
      const w = windowText(c.window);
      const n = Math.max(0, Number(c.count) || 0);
      if (c.quantifier === "atMost" || c.quantifier === "exactly") {
        const cond = `eventType = ${str(c.eventType)}${w ? ` and timestamp occurs ${w}` : ""}`;
        return `xEvent[${cond}].count() ${c.quantifier === "atMost" ? "<=" : "="} ${n}`;
      }
      const step = `C0: WHAT(eventType = ${str(c.eventType)})${w ? ` WHEN(${w})` : ""}${c.quantifier === "atLeast" && n > 1 ? ` COUNT(${n})` : ""}`;
      const chain = `chain(xEvent, timestamp, [${step}])`;
      return c.quantifier === "none" ? `not(${chain})` : chain;
    }
    case "sequence": {
      const w = windowText(c.window);
      const steps = (c.steps || []).map((s, i) => `C${i}: WHAT(eventType = ${str(s.eventType)})${w ? ` WHEN(${w})` : ""}`);
      return `chain(xEvent, timestamp, [${steps.join(", ")}])`;
    }
    case "segment":
      return c.negate ? `not(inSegment(${str(c.id)}))` : `inSegment(${str(c.id)})`;
    case "raw":
      return c.pql || "true";
    case "group":
      return groupToPql(c, false);
    default:
      throw new Error(`unknown condition ${c.type}`);
  }
}

function groupToPql(g, top) {
  const parts = g.children.map((c) => (c.type === "group" && c.children.length > 1 ? `(${condToPql(c)})` : condToPql(c)));
  if (!parts.length) return "true";
  const joined = parts.join(top ? `\n${g.op} ` : ` ${g.op} `);
  return g.negate ? `not(${joined})` : joined;
}

/** The whole rule tree as PQL text; top-level conditions go one per line. */
export function toPql(root) {
  return groupToPql(root, true);
}

// ---------------------------------------------------------------- PQL → rules

function tokenize(text) {
  const out = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (/\s/.test(ch)) { i++; continue; }
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out.push({ t: "str", s: i, e: j + 1 });
      i = j + 1;
      continue;
    }
    if ("()[]".includes(ch)) { out.push({ t: ch, s: i, e: i + 1 }); i++; continue; }
    const m = /^[A-Za-z_$][\w$]*/.exec(text.slice(i));
    if (m) { out.push({ t: "word", w: m[0].toLowerCase(), s: i, e: i + m[0].length }); i += m[0].length; continue; }
    out.push({ t: "sym", s: i, e: i + 1 });
    i++;
  }
  return out;
}

class Unshaped extends Error {}

export function fromPql(text, fields = []) {
  const toks = tokenize(text);
  let pos = 0;
  const types = new Map(fields.map((f) => [f.path, f.type]));
  const peek = () => toks[pos];
  const isWord = (w) => peek() && peek().t === "word" && peek().w === w;

  function parseOr() {
    const items = [parseAnd()];
    while (isWord("or")) { pos++; items.push(parseAnd()); }
    return items.length === 1 ? items[0] : { type: "group", op: "or", children: items.map(unwrapFor("or")) };
  }
  function parseAnd() {
    const items = [parseUnary()];
    while (isWord("and")) { pos++; items.push(parseUnary()); }
    return items.length === 1 ? items[0] : { type: "group", op: "and", children: items.map(unwrapFor("and")) };
  }
  function unwrapFor() { return (x) => x; }
  function parseUnary() {
    const t = peek();
    if (!t) throw new Unshaped("expression ends early");
    if (t.t === "word" && t.w === "not" && toks[pos + 1] && toks[pos + 1].t === "(") {
      const start = t.s;
      pos += 2;
      const inner = parseOr();
      if (!peek() || peek().t !== ")") throw new Unshaped("missing )");
      pos++;
      const end = toks[pos - 1].e;
      if (inner.type === "segment" && !inner.negate) return { ...inner, negate: true };
      if (inner.type === "event" && inner.quantifier === "atLeast" && Number(inner.count) <= 1) return { ...inner, quantifier: "none", count: 1 };
      if (inner.type === "group") return { ...inner, negate: !inner.negate };
      return { type: "raw", pql: text.slice(start, end) };
    }
    if (t.t === "(") {
      const save = pos;
      try {
        pos++;
        const inner = parseOr();
        if (peek() && peek().t === ")") {
          pos++;
          if (!peek() || peek().t === ")" || isWord("and") || isWord("or")) return inner;
        }
      } catch (err) {
        if (!(err instanceof Unshaped)) throw err;
      }
      pos = save; // a parenthesised value expression such as (a + b) > 3: read as an atom
    }
    return parseAtom();
  }
  function parseAtom() {
    const start = peek().s;
    let depth = 0;
    let end = start;
    while (pos < toks.length) {
      const t = toks[pos];
      if (depth === 0 && (t.t === ")" || (t.t === "word" && (t.w === "and" || t.w === "or") && !betweenAnd()))) break;
      if (t.t === "(" || t.t === "[") depth++;
      if (t.t === ")" || t.t === "]") depth--;
      end = t.e;
      pos++;
    }
    if (end === start) throw new Unshaped("empty condition");
    return leaf(text.slice(start, end).trim());
  }
  function betweenAnd() {
    // "x occurs between A and B": this "and" belongs to the atom
    for (let k = pos - 1; k >= 0 && k >= pos - 8; k--) {
      const t = toks[k];
      if (t.t === "word" && t.w === "between") return true;
      if (t.t === "word" && (t.w === "and" || t.w === "or")) return false;
    }
    return false;
  }

  function leaf(s) {
    let m;
    if ((m = /^inSegment\(\s*"([^"]*)"\s*\)$/i.exec(s))) return { type: "segment", id: m[1], negate: false };
    if ((m = /^([A-Za-z_][\w.]*)\.isNotNull\(\)$/.exec(s))) return attr(m[1], "exists", "");
    if ((m = /^([A-Za-z_][\w.]*)\.isNull\(\)$/.exec(s))) return attr(m[1], "missing", "");
    if ((m = /^([A-Za-z_][\w.]*)\.(contains|startsWith|endsWith)\(\s*("(?:[^"\\]|\\.)*")\s*\)$/.exec(s))) return attr(m[1], m[2], JSON.parse(m[3]));
    if ((m = /^([A-Za-z_][\w.]*)\s+in\s+\[(.*)\]$/.exec(s))) {
      const vals = [...m[2].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => JSON.parse(`"${x[1]}"`));
      return attr(m[1], "in", vals.join(", "));
    }
    if ((m = /^([A-Za-z_][\w.]*)\s+occurs\s+(before|after|on)\s+date\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(s)))
      return attr(m[1], m[2], `${m[3].padStart(4, "0")}-${m[4].padStart(2, "0")}-${m[5].padStart(2, "0")}`);
    if ((m = /^([A-Za-z_][\w.]*)\s+occurs\s+<=\s*(\d+)\s+days?\s+before\s+now$/.exec(s))) return attr(m[1], "lastDays", m[2]);
    if ((m = /^([A-Za-z_][\w.]*)\s*(=|!=|<=|>=|<|>)\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false)$/.exec(s))) {
      const [, p, op, raw] = m;
      const type = types.get(p) || (raw.startsWith('"') ? "string" : raw === "true" || raw === "false" ? "boolean" : "integer");
      const value = raw.startsWith('"') ? JSON.parse(raw) : raw;
      if (raw === "true" && op === "=") return attr(p, "isTrue", "", "boolean");
      if (raw === "false" && op === "=") return attr(p, "isFalse", "", "boolean");
      if (type === "string" || type === "date" || type === "date-time") {
        if (op === "=") return attr(p, "equals", value, "string");
        if (op === "!=") return attr(p, "notEquals", value, "string");
      }
      return attr(p, op, value, type === "string" ? "integer" : type);
    }
    if ((m = /^chain\(\s*xEvent\s*,\s*timestamp\s*,\s*\[(.*)\]\s*\)$/is.exec(s))) {
      const stepRe = /^\s*\w+\s*:\s*WHAT\(\s*eventType\s*=\s*("(?:[^"\\]|\\.)*")\s*\)(?:\s*WHEN\(\s*<=\s*(\d+)\s+(days?|hours?)\s+before\s+now\s*\))?(?:\s*COUNT\(\s*(\d+)\s*\))?\s*$/i;
      const parts = splitTop(m[1]);
      const steps = parts.map((p) => stepRe.exec(p));
      if (steps.every(Boolean) && steps.length) {
        const win = steps[0][2] ? { n: Number(steps[0][2]), unit: plural(steps[0][3]) } : null;
        if (steps.length === 1) {
          return { type: "event", eventType: JSON.parse(steps[0][1]), quantifier: "atLeast", count: Number(steps[0][4] || 1), window: win };
        }
        const sameWindow = steps.every((x) => (x[2] || "") === (steps[0][2] || "") && !x[4]);
        if (sameWindow) return { type: "sequence", steps: steps.map((x) => ({ eventType: JSON.parse(x[1]) })), window: win };
      }
    }
    if ((m = /^xEvent\[\s*eventType\s*=\s*("(?:[^"\\]|\\.)*")(?:\s+and\s+timestamp\s+occurs\s+<=\s*(\d+)\s+(days?|hours?)\s+before\s+now)?\s*\]\.count\(\)\s*(<=|=|>=)\s*(\d+)$/.exec(s))) {
      const q = m[4] === "<=" ? "atMost" : m[4] === "=" ? "exactly" : "atLeast";
      return { type: "event", eventType: JSON.parse(m[1]), quantifier: q, count: Number(m[5]), window: m[2] ? { n: Number(m[2]), unit: plural(m[3]) } : null };
    }
    if (/^true$/i.test(s)) return { type: "group", op: "and", children: [] };
    return { type: "raw", pql: s };
  }
  function attr(path, op, value, type) {
    return { type: "attr", path, op, value: String(value ?? ""), fieldType: types.get(path) || type || "string" };
  }

  if (!toks.length) return newGroup();
  const tree = parseOr();
  if (pos < toks.length) throw new Unshaped(`unexpected text at character ${toks[pos].s + 1}`);
  return tree.type === "group" ? flatten(tree) : { type: "group", op: "and", children: [tree] };
}

function flatten(g) {
  // (a and b) and c → one group; keep groups whose operator differs from their parent
  const children = [];
  for (const c of g.children) {
    if (c.type === "group" && !c.negate) {
      const f = flatten(c);
      if (f.op === g.op || f.children.length <= 1) children.push(...f.children);
      else children.push(f);
    } else children.push(c);
  }
  return { ...g, children };
}

function plural(unit) {
  return unit.endsWith("s") ? unit : unit + "s";
}

function splitTop(s) {
  const out = [];
  let depth = 0, cur = "", inStr = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inStr) {
      cur += ch;
      if (ch === "\\") { cur += s[++i] || ""; continue; }
      if (ch === '"') inStr = false;
      continue;
    }
    if (ch === '"') inStr = true;
    if (ch === "(" || ch === "[") depth++;
    if (ch === ")" || ch === "]") depth--;
    if (ch === "," && depth === 0) { out.push(cur); cur = ""; continue; }
    cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out;
}

export { Unshaped };
