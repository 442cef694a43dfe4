import { api, ui } from "../api.js";
import { drawGraph, legend } from "../graph.js";
import { card, clear, errorBox, field, fmtNumber, h, select, table } from "../ui.js";

const EXAMPLE = "# one event per line: the identities seen together\nCRMID: Tom, ECID: 111\nCRMID: Tom, Email: tom@example.com\nCRMID: Jerry, ECID: 111\nECID: 222, Email: tom@example.com";

export async function render(root) {
  root.append(h("h1", "Identity settings"));
  const d = await ui("/namespaces");
  const rules = d.rules;
  const rows = d.namespaces.slice().sort((a, b) => (a.priority ?? 999) - (b.priority ?? 999) || a.code.localeCompare(b.code));
  const uniq = new Set(rules.unique);
  let order = rules.priority.slice();
  const status = h("div", { "aria-live": "polite" });
  const tbody = h("tbody");
  function draw() {
    clear(tbody);
    const ranked = [...order, ...rows.map((r) => r.code).filter((c) => !order.includes(c))];
    ranked.forEach((code, i) => {
      const ns = rows.find((r) => r.code === code);
      if (!ns) return;
      const box = h("input", { type: "checkbox", checked: uniq.has(code), id: `unique-${code}`, "aria-label": `${code} is unique (at most one per graph)` });
      box.addEventListener("change", () => { box.checked ? uniq.add(code) : uniq.delete(code); });
      const inOrder = order.includes(code);
      const up = h("button.small", { type: "button", "aria-label": `Raise ${code} priority`, disabled: !inOrder || i === 0 }, "▲");
      const down = h("button.small", { type: "button", "aria-label": `Lower ${code} priority`, disabled: !inOrder || i >= order.length - 1 }, "▼");
      const toggle = h("button.small", { type: "button" }, inOrder ? "Unrank" : "Rank");
      up.addEventListener("click", () => { const k = order.indexOf(code); [order[k - 1], order[k]] = [order[k], order[k - 1]]; draw(); });
      down.addEventListener("click", () => { const k = order.indexOf(code); [order[k + 1], order[k]] = [order[k], order[k + 1]]; draw(); });
      toggle.addEventListener("click", () => { order = inOrder ? order.filter((c) => c !== code) : [...order, code]; draw(); });
      tbody.append(h("tr", h("td", inOrder ? String(order.indexOf(code) + 1) : "–"), h("td", h("b", ns.code), " ", h("span.muted", ns.name)),
        h("td", ns.type), h("td", fmtNumber(ns.identities)), h("td", ns.buildsGraph ? "yes" : "no"), h("td", box), h("td", up, down, toggle)));
    });
  }
  draw();
  const limit = h("input", { type: "number", min: 2, value: rules.limit ?? "", name: "limit" });
  const reResolve = h("input", { type: "checkbox", id: "re-resolve" });
  const save = h("button.primary", { type: "button" }, "Save linking rules");
  save.addEventListener("click", async () => {
    clear(status);
    try {
      const r = await ui("/identity/rules", { method: "PUT", body: { unique: [...uniq], priority: order, limit: limit.value ? Number(limit.value) : null, reResolve: reResolve.checked } });
      status.append(h("p.okbox", `Saved: unique ${r.unique.join(", ") || "none"}; priority ${r.priority.join(" > ")}; limit ${r.limit}.`));
    } catch (err) { status.append(errorBox(err)); }
  });
  root.append(card("Namespaces and linking rules",
    h("p.muted", "Unique namespaces allow one identity per graph; priority decides which links survive and the primary identity."),
    h("div.table-wrap", h("table", h("thead", h("tr", ["Rank", "Namespace", "Type", "Identities", "Builds graph", "Unique", "Priority"].map((x) => h("th", { scope: "col" }, x)))), tbody)),
    h("div.row", field("Graph size limit", limit), h("label", { for: "re-resolve" }, reResolve, " Apply to existing graphs now"), save), status));

  // a custom namespace, through the reference Identity Service API
  const code = h("input", { name: "code", required: true, pattern: "[A-Za-z0-9_-]{1,64}", placeholder: "UserID" });
  const nsName = h("input", { name: "nsName", required: true, placeholder: "User ID" });
  const idType = select([["CROSS_DEVICE", "Cross-device"], ["EMAIL", "Email"], ["PHONE", "Phone"], ["DEVICE", "Device"],
    ["COOKIE", "Cookie"], ["NON_PEOPLE", "Non-people"], ["PARTNER", "Partner ID"]], "CROSS_DEVICE", { name: "idType" });
  const created = h("div", { "aria-live": "polite" });
  const nsForm = h("form", { "aria-label": "Create a namespace" },
    h("div.row", field("Code (immutable)", code), field("Display name", nsName), field("Identity type (immutable)", idType),
      h("button", { type: "submit" }, "Create namespace")), created);
  nsForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(created);
    try {
      const ns = await api("/data/core/idnamespace/identities", { method: "POST", body: { code: code.value.trim(), name: nsName.value.trim(), idType: idType.value } });
      created.append(h("p.okbox", `Created ${ns.code} (id ${ns.id}, ${ns.idType}). Reload the page to rank it.`));
    } catch (err) { created.append(errorBox(err)); }
  });
  root.append(card("New namespace", h("p.muted", "Namespaces cannot be deleted; their code and type cannot change."), nsForm));

  // simulator
  const text = h("textarea#sim-text", { rows: 7, "aria-label": "Events, one per line" });
  text.value = EXAMPLE;
  const useRules = h("input", { type: "checkbox", id: "sim-rules", checked: true });
  const run = h("button.primary#simulate", { type: "button" }, "Simulate");
  const out = h("div#sim-out", { "aria-live": "polite" });
  run.addEventListener("click", async () => {
    clear(out);
    try {
      const body = { text: text.value, unique: useRules.checked ? [...uniq] : [], priority: useRules.checked ? order : [], limit: limit.value ? Number(limit.value) : 50 };
      const r = await ui("/identity/simulate", { method: "POST", body });
      const graphs = r.graphs.map((g, i) => {
        const ids = new Set(g.identities.map((x) => `${x.namespace}:${x.id}`));
        const nodes = g.identities.map((x) => ({ ...x, type: (rows.find((n) => n.code === x.namespace) || {}).type || "CROSS_DEVICE" }));
        const links = r.links.filter((l) => ids.has(`${l.a.namespace}:${l.a.id}`));
        return card(`Graph ${i + 1}`, legend(nodes.map((n) => n.type)), drawGraph({ nodes, links }).element);
      });
      out.append(table(["Event", "Primary identity", "Outcome"], r.rows.map((row, i) => [String(i + 1),
        row.primary ? `${row.primary.namespace}:${row.primary.id}` : "–", row.rejected || "linked"])), h("div.grid", graphs));
    } catch (err) { out.append(errorBox(err)); }
  });
  root.append(card("Graph simulation", h("p.muted", "Paste events as 'Namespace: value, Namespace: value' lines and see the graphs the linking rules build."),
    text, h("div.row", h("label", { for: "sim-rules" }, useRules, " Use the rules above"), run), out));
}
