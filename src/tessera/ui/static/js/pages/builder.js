import { ui } from "../api.js";
import { OPS, QUANTIFIERS, fromPql, newGroup, toPql } from "../pql.js";
import { card, clear, debounce, errorBox, field, fmtNumber, fmtTime, h, select, table } from "../ui.js";

const DEFAULT_EVAL = { batch: { enabled: true }, continuous: { enabled: false }, synchronous: { enabled: false } };

export async function render(root, params) {
  root.append(h("h1", "Segment builder"));
  const [schema, segs] = await Promise.all([ui("/schema/fields"), ui("/segments").catch(() => ({ segments: [] }))]);
  const fields = schema.profile.slice().sort((a, b) => a.path.localeCompare(b.path));
  const byPath = new Map(fields.map((f) => [f.path, f]));
  const st = { rules: newGroup("and"), mode: "rules", pql: "", engineMissing: false, check: null, saved: null };

  const evDatalist = h("datalist#event-types", schema.eventTypes.map((t) => h("option", { value: t })));
  const rulesBox = h("div.rules", { "aria-label": "Rules" });
  const pqlArea = h("textarea#pql-editor", { rows: 8, spellcheck: "false", "aria-describedby": "pql-status", "aria-label": "PQL expression" });
  const pqlStatus = h("div#pql-status", { "aria-live": "polite" });
  const rulesTab = h("button", { type: "button", role: "tab", "aria-selected": "true", id: "tab-rules" }, "Rules");
  const pqlTab = h("button", { type: "button", role: "tab", "aria-selected": "false", id: "tab-pql" }, "PQL");
  const rulesPanel = h("div", { role: "tabpanel", "aria-labelledby": "tab-rules" }, evDatalist, rulesBox);
  const pqlPanel = h("div.editor", { role: "tabpanel", "aria-labelledby": "tab-pql", hidden: true }, pqlArea, pqlStatus);
  const pqlPreview = h("pre.json#pql-preview", { "aria-label": "Generated PQL" });

  const estimateBox = h("div.estimate#estimate", { "aria-live": "polite" }, h("p.muted", "Add a condition to see an estimate."));
  const sampleBox = h("div#preview-sample");
  const methodsBox = h("div#methods");
  const name = h("input", { name: "name", required: true, placeholder: "Loyal shoppers in California" });
  const desc = h("input", { name: "description" });
  const saveBtn = h("button.primary#save-segment", { type: "submit" }, "Save segment");
  const saveForm = h("form", { "aria-label": "Save segment" }, field("Name", name), field("Description", desc), saveBtn);
  const savedBox = h("div#saved", { "aria-live": "polite" });
  const evalChoice = structuredClone(DEFAULT_EVAL);

  root.append(
    h("div.grid.two",
      h("div",
        card("Definition",
          h("div.tabs", { role: "tablist", "aria-label": "Editor" }, rulesTab, pqlTab),
          rulesPanel, pqlPanel,
          h("details", { open: true }, h("summary", "PQL"), pqlPreview)),
      ),
      h("div",
        card("Estimate", estimateBox, sampleBox),
        card("Evaluation methods", methodsBox),
        card("Save", saveForm, savedBox),
      ),
    ),
  );

  // ---------------------------------------------------------------- rules editor
  function redraw() {
    clear(rulesBox).append(groupEl(st.rules, null));
    st.pql = toPql(st.rules);
    pqlPreview.textContent = st.pql;
    changed();
  }

  function groupEl(g, parent) {
    const opSel = select([["and", "ALL of (AND)"], ["or", "ANY of (OR)"]], g.op, { "aria-label": "Combine conditions with" });
    opSel.addEventListener("change", () => { g.op = opSel.value; redraw(); });
    const add = (kind) => () => { g.children.push(blank(kind)); redraw(); focusLast(); };
    const el = h(`div.group${g.op === "or" ? ".or" : ""}`, { role: "group", "aria-label": parent ? "Nested group" : "All rules" },
      h("div.row", field("Match", opSel),
        g.negate ? h("span.pill.no", "NOT") : null,
        parent ? h("button.small", { type: "button", onclick: () => { parent.children.splice(parent.children.indexOf(g), 1); redraw(); } }, "Remove group") : null),
      g.children.map((c) => (c.type === "group" ? groupEl(c, g) : condEl(c, g))),
      h("div.toolbar",
        h("button.small", { type: "button", onclick: add("attr"), "data-add": "attr" }, "+ Attribute"),
        h("button.small", { type: "button", onclick: add("event"), "data-add": "event" }, "+ Event"),
        h("button.small", { type: "button", onclick: add("sequence"), "data-add": "sequence" }, "+ Sequence"),
        h("button.small", { type: "button", onclick: add("segment"), "data-add": "segment" }, "+ Segment"),
        h("button.small", { type: "button", onclick: add("group"), "data-add": "group" }, "+ Group")),
    );
    return el;
  }

  function focusLast() {
    const conds = rulesBox.querySelectorAll(".cond");
    const last = conds[conds.length - 1];
    last?.querySelector("select, input")?.focus();
  }

  function blank(kind) {
    if (kind === "attr") {
      const f = byPath.get("homeAddress.stateProvince") || fields[0];
      return { type: "attr", path: f.path, fieldType: f.type, op: OPS[f.type][0][0], value: "" };
    }
    if (kind === "event") return { type: "event", eventType: schema.eventTypes[0] || "commerce.purchases", quantifier: "atLeast", count: 1, window: { n: 30, unit: "days" } };
    if (kind === "sequence") return { type: "sequence", steps: [{ eventType: schema.eventTypes[0] || "" }, { eventType: schema.eventTypes[1] || "" }], window: { n: 7, unit: "days" } };
    if (kind === "segment") return { type: "segment", id: segs.segments[0]?.id || "", negate: false };
    return newGroup("or");
  }

  const commit = debounce(redraw, 250);

  function condEl(c, g) {
    const remove = h("button.small", { type: "button", "aria-label": "Remove condition", onclick: () => { g.children.splice(g.children.indexOf(c), 1); redraw(); } }, "✕");
    const input = (attrs, onChange) => {
      const el = h("input", attrs);
      el.addEventListener("input", () => { onChange(el.value); st.pql = toPql(st.rules); pqlPreview.textContent = st.pql; commit(); });
      return el;
    };
    if (c.type === "attr") {
      const f = byPath.get(c.path);
      const pathSel = select(fields.map((x) => [x.path, `${x.path} (${x.type})`]), c.path, { name: "attribute" });
      if (!f) pathSel.prepend(h("option", { value: c.path, selected: true }, c.path));
      pathSel.addEventListener("change", () => {
        const nf = byPath.get(pathSel.value);
        c.path = pathSel.value; c.fieldType = nf.type; c.op = OPS[nf.type][0][0]; c.value = "";
        redraw();
      });
      const ops = OPS[c.fieldType] || OPS.string;
      const opSel = select(ops, c.op, { name: "operator" });
      opSel.addEventListener("change", () => { c.op = opSel.value; redraw(); });
      const needsValue = !["exists", "missing", "isTrue", "isFalse"].includes(c.op);
      let valueEl = null;
      if (needsValue) {
        const isDate = (c.fieldType === "date" || c.fieldType === "date-time") && c.op !== "lastDays";
        const enumVals = f?.enum;
        if (enumVals && c.op === "equals") {
          valueEl = select(["", ...enumVals], c.value, { name: "value" });
          valueEl.addEventListener("change", () => { c.value = valueEl.value; redraw(); });
        } else {
          valueEl = input({ name: "value", value: c.value, type: isDate ? "date" : c.op === "lastDays" || c.fieldType === "integer" || c.fieldType === "number" ? "number" : "text",
            placeholder: c.op === "in" ? "CA, OR, WA" : "" }, (v) => { c.value = v; });
        }
      }
      return h("div.cond", { "data-kind": "attr" }, h("span.kind", "Attribute"), field("Attribute", pathSel), field("Operator", opSel),
        valueEl ? field(c.op === "lastDays" ? "Days" : "Value", valueEl) : null, remove);
    }
    if (c.type === "event") {
      const q = select(QUANTIFIERS, c.quantifier, { name: "quantifier" });
      q.addEventListener("change", () => { c.quantifier = q.value; redraw(); });
      const count = input({ type: "number", min: 0, value: c.count, name: "count", size: 4 }, (v) => { c.count = Number(v); });
      const et = input({ list: "event-types", value: c.eventType, name: "eventType" }, (v) => { c.eventType = v; });
      const days = input({ type: "number", min: 0, value: c.window?.n ?? "", name: "windowDays", placeholder: "any time" }, (v) => { c.window = v ? { n: Number(v), unit: c.window?.unit || "days" } : null; });
      const unit = select([["days", "days"], ["hours", "hours"]], c.window?.unit || "days", { name: "windowUnit" });
      unit.addEventListener("change", () => { if (c.window) c.window.unit = unit.value; redraw(); });
      return h("div.cond", { "data-kind": "event" }, h("span.kind", "Event"), field("Has", q),
        c.quantifier !== "none" ? field("Times", count) : null, field("Event type", et), field("Within the last", days), field("Unit", unit), remove);
    }
    if (c.type === "sequence") {
      const steps = c.steps.map((s, i) => field(`Step ${i + 1} event`, input({ list: "event-types", value: s.eventType, name: `step${i}` }, (v) => { s.eventType = v; })));
      const days = input({ type: "number", min: 0, value: c.window?.n ?? "", name: "windowDays", placeholder: "any time" }, (v) => { c.window = v ? { n: Number(v), unit: "days" } : null; });
      return h("div.cond", { "data-kind": "sequence" }, h("span.kind", "Sequence"), steps,
        h("button.small", { type: "button", onclick: () => { if (c.steps.length < 6) c.steps.push({ eventType: "" }); redraw(); } }, "+ step"),
        field("All within the last (days)", days), remove);
    }
    if (c.type === "segment") {
      const s = select(segs.segments.map((x) => [x.id, x.name]), c.id, { name: "segment" });
      if (!segs.segments.length) s.append(h("option", { value: "" }, "No saved segments"));
      s.addEventListener("change", () => { c.id = s.value; redraw(); });
      const neg = select([["in", "is in"], ["out", "is not in"]], c.negate ? "out" : "in", { name: "membership" });
      neg.addEventListener("change", () => { c.negate = neg.value === "out"; redraw(); });
      return h("div.cond", { "data-kind": "segment" }, h("span.kind", "Segment"), field("Profile", neg), field("Segment", s), remove);
    }
    const raw = input({ value: c.pql, name: "pql", size: 60 }, (v) => { c.pql = v; });
    return h("div.cond", { "data-kind": "raw" }, h("span.kind", "PQL"), field("Condition (kept as PQL)", raw), remove);
  }

  // ---------------------------------------------------------------- PQL editor
  function setMode(mode) {
    if (mode === st.mode) return;
    if (mode === "rules") {
      try {
        st.rules = fromPql(pqlArea.value, fields);
      } catch (err) {
        clear(pqlStatus).append(h("div.alert", { role: "alert" }, `This PQL cannot be shown as rules (${err.message}); keep editing it as text.`));
        return;
      }
    } else {
      pqlArea.value = toPql(st.rules);
    }
    st.mode = mode;
    rulesTab.setAttribute("aria-selected", String(mode === "rules"));
    pqlTab.setAttribute("aria-selected", String(mode === "pql"));
    rulesPanel.hidden = mode !== "rules";
    pqlPanel.hidden = mode !== "pql";
    if (mode === "rules") redraw();
    else { st.pql = pqlArea.value; changed(); pqlArea.focus(); }
  }
  rulesTab.addEventListener("click", () => setMode("rules"));
  pqlTab.addEventListener("click", () => setMode("pql"));
  for (const tab of [rulesTab, pqlTab])
    tab.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") { const other = tab === rulesTab ? pqlTab : rulesTab; other.focus(); other.click(); }
    });
  pqlArea.addEventListener("input", () => { st.pql = pqlArea.value; pqlPreview.textContent = st.pql; changed(); });

  function markError(text, err) {
    const line = Number(err.report.line || String(err.report.path || "1:1").split(":")[0]) || 1;
    const col = Number(err.report.column || String(err.report.path || "1:1").split(":")[1]) || 1;
    const lines = text.split("\n");
    const pre = h("div.pql-error-mark", { "data-line": line, "data-column": col });
    lines.forEach((l, i) => {
      if (i + 1 !== line) { pre.append(l + "\n"); return; }
      const at = Math.min(Math.max(col - 1, 0), l.length);
      const m = /^\S+/.exec(l.slice(at));
      const len = m ? m[0].length : 1;
      pre.append(l.slice(0, at), h("span.err", { title: err.detail }, l.slice(at, at + len) || " "), l.slice(at + len) + "\n");
    });
    pqlArea.setAttribute("aria-invalid", "true");
    return h("div", h("div.alert.pql-error", { role: "alert" }, `Line ${line}, column ${col}: ${err.detail}`), pre);
  }

  // ---------------------------------------------------------------- checks and estimate
  let seq = 0;
  const refresh = debounce(async () => {
    const my = ++seq;
    const text = st.pql.trim();
    if (!text || text === "true") {
      clear(estimateBox).append(h("p.muted", "Add a condition to see an estimate."));
      clear(sampleBox); clear(methodsBox); clear(pqlStatus);
      return;
    }
    clear(estimateBox).append(h("p.muted", "Estimating…"));
    try {
      st.check = await ui("/pql/check", { method: "POST", body: { pql: text } });
      if (my !== seq) return;
      pqlArea.removeAttribute("aria-invalid");
      clear(pqlStatus).append(h("p.okbox", "PQL is valid."));
      showMethods();
    } catch (err) {
      if (my === seq) checkFailed(err, text);
      return;
    }
    try {
      const est = await ui("/estimate", { method: "POST", body: { pql: text } });
      if (my !== seq) return;
      showEstimate(est);
    } catch (err) {
      if (my !== seq) return;
      clear(sampleBox);
      clear(estimateBox).append(err.status === 501 ? h("div.notice#engine-missing", { role: "status" }, `Not available: ${err.detail}`) : errorBox(err));
    }
  }, 400);

  function checkFailed(err, text) {
    st.check = null;
    clear(sampleBox);
    if (err.status === 501) {
      st.engineMissing = true;
      clear(estimateBox).append(h("div.notice#engine-missing", { role: "status" }, `Not available: ${err.detail} Estimates, checks, saving and evaluation need it; the rules and PQL text above are still yours to copy.`));
      clear(methodsBox).append(h("p.muted", "Eligibility needs the PQL engine."));
      return;
    }
    const box = err.report && (err.report.line || /^\d+:\d+$/.test(err.report.path || "")) ? markError(text, err) : errorBox(err);
    clear(pqlStatus).append(box);
    clear(estimateBox).append(h("p.muted", "Fix the expression to see an estimate."));
    if (st.mode === "rules") estimateBox.append(box.cloneNode(true));
    clear(methodsBox);
  }

  function changed() {
    saveBtn.disabled = false;
    refresh();
  }

  function showEstimate(est) {
    const e = est.estimate;
    const [lo, hi] = e.confidenceIntervalBounds || [e.estimatedSize, e.estimatedSize];
    clear(estimateBox).append(
      h("p", h("b#estimate-size", fmtNumber(e.estimatedSize)), " profiles"),
      h("p.muted#estimate-ci", e.exact ? `Exact count over all ${fmtNumber(e.totalRows)} profiles.` : `95% confidence interval ${fmtNumber(lo)} – ${fmtNumber(hi)} (sample of ${fmtNumber(e.profilesReadSoFar)} of ${fmtNumber(e.totalRows)}).`),
      (e.estimatedNamespaceDistribution || []).length
        ? h("p.muted", "By primary namespace: ", e.estimatedNamespaceDistribution.map((x) => `${x.namespaceId} ${fmtNumber(x.profilesMatchedSoFar)}`).join(", "))
        : null,
    );
    clear(sampleBox).append(h("h3", "Preview sample"), est.results.length
      ? table(["Primary identity", "Name", ""], est.results.map((p) => [
          p.primary ? `${p.primary.namespace}:${p.primary.id}` : p.profileId,
          [p.attributes?.person?.name?.firstName, p.attributes?.person?.name?.lastName].filter(Boolean).join(" "),
          h("a", { href: `#/profile?profileId=${encodeURIComponent(p.profileId)}` }, "Open")]))
      : h("p.muted", "No profile matches."));
  }

  function showMethods() {
    const c = st.check;
    clear(methodsBox);
    for (const [mode, label] of [["batch", "Batch (daily job)"], ["continuous", "Streaming"], ["synchronous", "Edge"]]) {
      const v = c[mode];
      const box = h("input", { type: "checkbox", name: `method-${mode}`, checked: evalChoice[mode].enabled && v.eligible, disabled: !v.eligible });
      box.addEventListener("change", () => { evalChoice[mode].enabled = box.checked; });
      if (!v.eligible) evalChoice[mode].enabled = false;
      box.id = `method-${mode}`;
      methodsBox.append(h("div.field", h("label", { for: box.id }, box, " ", label, " ", h(`span.pill.${v.eligible ? "yes" : "no"}`, v.eligible ? "eligible" : "not eligible")),
        h("small.muted", v.reason || "")));
    }
  }

  // ---------------------------------------------------------------- save, evaluate, explain
  saveForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(savedBox);
    try {
      const doc = await ui("/segments", { method: "POST", body: { name: name.value, description: desc.value, pql: st.pql, evaluationInfo: evalChoice } });
      st.saved = doc;
      showSaved(doc);
    } catch (err) {
      savedBox.append(errorBox(err));
    }
  });

  function showSaved(doc) {
    const evalBtn = h("button.primary#evaluate-now", { type: "button" }, "Evaluate now");
    const result = h("div#evaluation", { "aria-live": "polite" });
    clear(savedBox).append(h("p.okbox", "Saved ", h("a", { href: `#/segments?id=${encodeURIComponent(doc.id)}` }, doc.name), ` (id ${doc.id}).`), evalBtn, result);
    evalBtn.addEventListener("click", async () => {
      clear(result).append(h("p.muted", "Evaluating…"));
      evalBtn.disabled = true;
      try {
        const r = await ui(`/segments/${encodeURIComponent(doc.id)}/evaluate`, { method: "POST", body: {} });
        clear(result).append(evaluationView(doc.id, r));
      } catch (err) {
        clear(result).append(errorBox(err));
      } finally {
        evalBtn.disabled = false;
      }
    });
  }

  // start from ?pql= when given (the segments list "Edit as new")
  if (params.get("pql")) {
    try { st.rules = fromPql(params.get("pql"), fields); } catch { st.rules = { type: "group", op: "and", children: [{ type: "raw", pql: params.get("pql") }] }; }
  }
  redraw();
}

export function evaluationView(segmentId, r) {
  const job = r.job;
  const size = job.metrics?.segmentedProfileCounter?.[segmentId] ?? 0;
  const explainBox = h("div.explain-member", { "aria-live": "polite" });
  return h("div",
    h("p#evaluated-size", h("b", fmtNumber(size)), ` members after job ${job.id} (${job.status}, ${fmtTime(job.updateTime)}).`),
    r.members.length
      ? table(["Member", "Status", "Since", ""], r.members.map((m) => [
          h("a.member", { href: `#/profile?profileId=${encodeURIComponent(m.profileId)}` }, m.primary ? `${m.primary.namespace}:${m.primary.id}` : m.profileId),
          h(`span.pill.${m.status}`, m.status), fmtTime(m.lastQualificationTime),
          h("button.small", { type: "button", onclick: () => explainMember(explainBox, segmentId, m.profileId) }, "Why?")]))
      : h("p.muted", "No members."),
    explainBox);
}

export async function explainMember(box, segmentId, profileId) {
  clear(box).append(h("p.muted", "Explaining…"));
  try {
    const r = await ui(`/segments/${encodeURIComponent(segmentId)}/explain`, { query: { profileId } });
    const conds = Array.isArray(r.explanation?.conditions) ? r.explanation.conditions : null;
    clear(box).append(
      h("h3", `${r.qualifies ? "Qualifies" : "Does not qualify"} (${r.profileId})`),
      conds
        ? table(["Condition", "Held"], conds.map((c) => [h("code", c.condition ?? c.text ?? JSON.stringify(c)),
            h(`span.pill.${c.held ? "yes" : "no"}`, c.held ? "yes" : "no")]))
        : null,
      h("details", { open: !conds }, h("summary", "Full explanation"), h("pre.json", JSON.stringify(r.explanation, null, 2))),
    );
  } catch (err) {
    clear(box).append(errorBox(err));
  }
}
