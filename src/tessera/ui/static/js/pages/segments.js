import { ui } from "../api.js";
import { card, clear, errorBox, fmtNumber, fmtTime, h, table } from "../ui.js";
import { methods, sparkline } from "./dashboard.js";
import { evaluationView } from "./builder.js";

export async function render(root, params) {
  root.append(h("h1", "Segments"), h("p", h("a", { href: "#/builder" }, "+ New segment")));
  let data;
  try {
    data = await ui("/segments");
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  const detail = h("div#segment-detail");
  root.append(card("All segments", data.segments.length
    ? table(["Name", "Size", "Trend", "Methods", "Created", ""], data.segments.map((s) => [
        h("a", { href: `#/segments?id=${encodeURIComponent(s.id)}` }, s.name),
        s.size === null ? h("span.muted", "not evaluated") : fmtNumber(s.size), sparkline(s.trend.map((t) => t.size)),
        methods(s.evaluationInfo), fmtTime(s.creationTime),
        h("a", { href: `#/builder?pql=${encodeURIComponent(s.expression.value)}` }, "Copy to builder")]))
    : h("p.muted", "No segments yet.")), detail);
  const id = params.get("id");
  const seg = data.segments.find((s) => s.id === id);
  if (!seg) return;
  const result = h("div", { "aria-live": "polite" });
  const evalBtn = h("button.primary", { type: "button" }, "Evaluate now");
  evalBtn.addEventListener("click", async () => {
    clear(result).append(h("p.muted", "Evaluating…"));
    try {
      clear(result).append(evaluationView(seg.id, await ui(`/segments/${encodeURIComponent(seg.id)}/evaluate`, { method: "POST", body: {} })));
    } catch (err) { clear(result).append(errorBox(err)); }
  });
  detail.append(card(seg.name, h("p.muted", seg.description || ""), h("pre.json", seg.expression.value),
    h("p", `Methods: ${methods(seg.evaluationInfo)} · lifecycle ${seg.lifecycleState || "published"} · id ${seg.id}`), evalBtn, result));
  try {
    const m = await ui(`/segments/${encodeURIComponent(seg.id)}/members`, { query: { limit: 20 } });
    clear(result).append(evaluationView(seg.id, { job: { id: "(latest)", status: "members", metrics: { segmentedProfileCounter: { [seg.id]: seg.size ?? m.members.length } } }, members: m.members }));
  } catch (err) { result.append(errorBox(err)); }
}
