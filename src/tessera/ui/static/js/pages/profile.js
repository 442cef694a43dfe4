import { api, ui } from "../api.js";
import { drawGraph, legend } from "../graph.js";
import { card, clear, debounce, errorBox, field, fmtTime, h, select, table } from "../ui.js";
import { go } from "../main.js";

export async function render(root, params) {
  root.append(h("h1", "Profiles"));
  const nsData = await ui("/namespaces");
  const codes = nsData.namespaces.filter((n) => n.identities > 0 || ["Email", "CRMID", "ECID", "Phone"].includes(n.code)).map((n) => n.code);
  const nsPick = select(codes, params.get("namespace") || "Email", { name: "namespace" });
  const listId = "identity-suggestions";
  const value = h("input", { name: "id", type: "search", value: params.get("id") || "", list: listId, autocomplete: "off", size: 36, placeholder: "jane@example.com" });
  const datalist = h("datalist", { id: listId });
  const suggest = debounce(async () => {
    const prefix = value.value;
    if (prefix.length < 1) return;
    try {
      const res = await ui("/identities/suggest", { query: { namespace: nsPick.value, prefix, limit: 10 } });
      clear(datalist).append(...res.values.map((v) => h("option", { value: v })));
    } catch { /* suggestions are a convenience */ }
  }, 150);
  value.addEventListener("input", suggest);
  const form = h("form.row", { role: "search", "aria-label": "Find a profile by identity" },
    field("Namespace", nsPick), field("Identity value", value), datalist,
    h("button.primary", { type: "submit" }, "Look up"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go("profile", { namespace: nsPick.value, id: value.value.trim() });
  });
  root.append(card("Find a profile", form));
  const out = h("div.profile-out");
  root.append(out);
  const profileId = params.get("profileId");
  if (!(params.get("id") && params.get("namespace")) && !profileId) {
    out.append(h("p.muted", "Search by any identity: an email, a CRM id, a cookie (ECID), a phone number…"));
    return;
  }
  await show(out, params);
}

async function show(out, params) {
  const query = {
    namespace: params.get("namespace"), id: params.get("id"), profileId: params.get("profileId"),
    mergePolicyId: params.get("mergePolicyId"), asOf: params.get("asOf"),
  };
  let d;
  try {
    d = await ui("/profile", { query });
  } catch (err) {
    out.append(errorBox(err));
    return;
  }
  const p = d.profile;
  const primary = p.primary ? `${p.primary.namespace}: ${p.primary.id}` : p.profileId;
  // merge policy switcher and "as of"
  const policy = select(d.policies.map((x) => [x.id, `${x.name}${x.default ? " (default)" : ""}`]), p.mergePolicyId, { name: "mergePolicyId" });
  const asOf = h("input", { type: "datetime-local", name: "asOf", value: params.get("asOf") ? params.get("asOf").slice(0, 16) : "" });
  const viewForm = h("form.row", { "aria-label": "How to merge this profile" },
    field("Merge policy", policy), field("As of (UTC)", asOf, "Empty = now"),
    h("button", { type: "submit" }, "Apply"));
  viewForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = Object.fromEntries([...params.entries()]);
    next.mergePolicyId = policy.value;
    if (asOf.value) next.asOf = asOf.value + ":00Z"; else delete next.asOf;
    go("profile", next);
  });
  out.append(h("h2#profile-title", `Profile ${primary}`), h("p.muted", `Profile id ${p.profileId} · sources: ${p.sources.map((s) => d.datasets[s] || s).join(", ") || "none"}${d.asOf ? " · as of " + fmtTime(d.asOf) : ""}`), viewForm);

  const explainBox = h("div.explain", { "aria-live": "polite" }, h("p.muted", "Select two identities in the graph to see why they are linked."));
  let graphView;
  const graphCard = card("Identity graph");
  graphView = drawGraph(d.graph, {
    onPair: async (a, b) => {
      clear(explainBox).append(h("p.muted", "Looking up the links…"));
      try {
        const res = await ui("/identity/explain", { query: { a: `${a.namespace}:${a.id}`, b: `${b.namespace}:${b.id}` } });
        graphView.highlight(res.links);
        clear(explainBox).append(
          h("h3", `Why ${a.namespace}:${a.id} and ${b.namespace}:${b.id} are linked`),
          res.links.length
            ? table(["From", "To", "First seen", "Last seen", "Dataset"], res.links.map((l) => [
                `${l.from.namespace}:${l.from.id}`, `${l.to.namespace}:${l.to.id}`, fmtTime(l.firstSeen), fmtTime(l.lastSeen), l.datasetName || "–"]))
            : h("p", "They are not linked."),
        );
      } catch (err) {
        clear(explainBox).append(errorBox(err));
      }
    },
  });
  graphCard.append(legend(d.graph.nodes.map((n) => n.type)), graphView.element, explainBox);

  const attrs = card("Attributes", attributeTree(p.attributes, p.provenance, d.datasets));
  const ids = card("Identities", table(["Namespace", "Value", "Type", "Primary", "First seen"],
    d.graph.nodes.map((n) => [n.namespace, n.id, n.type, n.primary ? "yes" : "", fmtTime(n.firstSeen)])));
  const seg = p.segmentMembership?.ups || p.segmentMembership || {};
  const segs = card("Segment memberships", Object.keys(seg).length
    ? table(["Segment", "Status", "Qualified / changed at"], Object.entries(seg).map(([sid, m]) => [
        h("a", { href: `#/segments?id=${encodeURIComponent(sid)}` }, d.segments[sid] || sid),
        h(`span.pill.${m.status}`, m.status), fmtTime(m.lastQualificationTime)]))
    : h("p.muted", "In no segment."));
  const events = card("Events");
  out.append(h("div.grid.two", h("div", attrs, segs), h("div", graphCard, ids)), events);
  await eventsTimeline(events, p.profileId, params.get("mergePolicyId"));
}

export function attributeTree(attributes, provenance, datasets) {
  function build(obj, path) {
    const ul = h("ul");
    for (const [k, v] of Object.entries(obj)) {
      const dotted = path ? `${path}.${k}` : k;
      const src = provenance[dotted];
      if (v && typeof v === "object" && !Array.isArray(v) && !src) {
        ul.append(h("li", h("span.key", k), build(v, dotted)));
      } else {
        const shown = typeof v === "object" ? JSON.stringify(v) : String(v);
        ul.append(h("li", { "data-path": dotted }, h("span.key", k), ": ", h("span.val", shown),
          src ? h("span.src", { title: "source dataset" }, datasets[src] || src) : null));
      }
    }
    return ul;
  }
  const attrs = { ...attributes };
  delete attrs.segmentMembership;
  return Object.keys(attrs).length ? h("div.tree", build(attrs, "")) : h("p.muted", "No profile attributes (events only).");
}

async function eventsTimeline(box, profileId, mergePolicyId) {
  const typeSel = h("select", { name: "eventType" }, h("option", { value: "" }, "All event types"));
  const start = h("input", { type: "date", name: "start" });
  const end = h("input", { type: "date", name: "end" });
  const form = h("form.row", { "aria-label": "Filter events" }, field("Event type", typeSel), field("From", start), field("Until", end), h("button", { type: "submit" }, "Filter"));
  const list = h("div");
  box.append(form, list);
  let first = true;
  async function load() {
    const res = await ui("/profile/events", { query: {
      profileId, mergePolicyId, eventType: typeSel.value, limit: 200,
      start: start.value ? start.value + "T00:00:00Z" : "", end: end.value ? end.value + "T23:59:59Z" : "" } });
    if (first) {
      for (const [t, n] of Object.entries(res.eventTypes).sort()) typeSel.append(h("option", { value: t }, `${t || "(none)"} (${n})`));
      first = false;
    }
    clear(list).append(
      h("p.muted", `${res.events.length} of ${res.total} events shown (newest first).`),
      table(["Time", "Event type", "Dataset", "Details"], res.events.map((e) => [
        fmtTime(e.record?.timestamp), e.record?.eventType || "", e.datasetName || "",
        h("details", h("summary", "record"), h("pre.json", JSON.stringify(e.record, null, 1)))])),
    );
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); load().catch((err) => list.append(errorBox(err))); });
  await load();
}
