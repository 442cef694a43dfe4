import { ui } from "../api.js";
import { bar, card, fmtNumber, fmtTime, h, table } from "../ui.js";

export async function render(root) {
  root.append(h("h1", "Dashboard"));
  const d = await ui("/overview");
  const id = d.identity;
  const rejected = d.datasets.reduce((s, x) => s + x.rejected, 0);
  const records = d.datasets.reduce((s, x) => s + x.records, 0);
  root.append(
    h(
      "div.stats",
      stat("Profiles", d.profiles, "profiles"),
      stat("Identity graphs", id.graphs, "graphs"),
      stat("Identities", id.identities, "identities"),
      stat("Segments", d.segments.length, "segments"),
      stat("Records ingested", records - rejected, "ingested"),
      stat("Rejected records", rejected, "rejected"),
    ),
  );
  const perNs = Object.entries(id.identitiesPerNamespace || {}).sort((a, b) => b[1] - a[1]);
  const maxNs = Math.max(1, ...perNs.map((x) => x[1]));
  const hist = Object.entries(id.sizeHistogram || {}).map(([k, v]) => [Number(k), v]).sort((a, b) => a[0] - b[0]);
  const maxH = Math.max(1, ...hist.map((x) => x[1]));
  const refused = Object.entries(id.refused || {});
  root.append(
    h(
      "div.grid",
      card("Identities per namespace", perNs.length ? perNs.map(([ns, n]) => bar(n, maxNs, ns)) : h("p.muted", "No identities yet.")),
      card(
        "Identity graph sizes",
        h("div.hist", { role: "img", "aria-label": "Histogram of graph sizes: " + hist.map(([s, n]) => `${n} graphs of ${s}`).join(", ") },
          hist.map(([s, n]) => h("div", { style: `height:${Math.round((n / maxH) * 100)}%`, title: `${n} graphs with ${s} identities` }))),
        h("div.hist-labels", hist.map(([s]) => h("span", String(s)))),
        h("p.muted", "Identities per graph (x) and number of graphs (height)."),
        refused.length
          ? h("div", h("h3", "Links refused by the linking rules"), refused.map(([why, n]) => h("p", h("b", fmtNumber(n)), " ", why)))
          : null,
      ),
      card(
        "Largest graphs",
        table(
          ["Primary identity", "Identities", ""],
          id.largest.map((g) => [
            g.primary ? `${g.primary.namespace}:${g.primary.id}` : g.profileId,
            fmtNumber(g.size),
            h("a", { href: `#/profile?profileId=${encodeURIComponent(g.profileId)}` }, "Open"),
          ]),
        ),
      ),
      card(
        "Segments",
        d.segmentationAvailable
          ? d.segments.length
            ? table(
                ["Segment", "Size", "Trend", "Methods"],
                d.segments.map((s) => [
                  h("a", { href: `#/segments?id=${encodeURIComponent(s.id)}` }, s.name),
                  s.size === null ? h("span.muted", "not evaluated") : fmtNumber(s.size),
                  sparkline(s.trend.map((t) => t.size)),
                  methods(s.evaluationInfo),
                ]),
              )
            : h("p.muted", "No segments yet. ", h("a", { href: "#/builder" }, "Build one"))
          : h("p.notice", "Segmentation is not installed in this build."),
      ),
      wide(card(
        "Ingestion",
        table(
          ["Dataset", "Batches", "Records", "Ingested", "Rejected", "Rate (records/s)", "Last batch"],
          d.datasets.map((x) => [
            h("a", { href: `#/datasets?id=${encodeURIComponent(x.id)}` }, x.name),
            fmtNumber(x.batches),
            fmtNumber(x.records),
            fmtNumber(x.ingested),
            x.rejected ? h("span.pill.no", fmtNumber(x.rejected)) : "0",
            x.recordsPerSecond ? fmtNumber(Math.round(x.recordsPerSecond)) : "–",
            fmtTime(x.lastBatch),
          ]),
        ),
      )),
    ),
  );
}

function wide(el) {
  el.classList.add("wide");
  return el;
}

function stat(label, value, key) {
  return h("div.stat", { "data-stat": key }, h("span.muted", label), h("b", fmtNumber(value)));
}

export function methods(info) {
  if (!info) return "";
  const out = [];
  if (info.batch?.enabled) out.push("batch");
  if (info.continuous?.enabled) out.push("streaming");
  if (info.synchronous?.enabled) out.push("edge");
  return out.join(", ");
}

export function sparkline(values) {
  if (!values || values.length < 2) return h("span.muted", values && values.length ? "1 run" : "–");
  const max = Math.max(...values, 1);
  const w = 80, hgt = 20;
  const pts = values.map((v, i) => `${(i / (values.length - 1)) * w},${hgt - (v / max) * hgt}`).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w);
  svg.setAttribute("height", hgt);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `sizes over the last runs: ${values.join(", ")}`);
  const pl = document.createElementNS(ns, "polyline");
  pl.setAttribute("points", pts);
  pl.setAttribute("fill", "none");
  pl.setAttribute("stroke", "#2c5fd4");
  svg.append(pl);
  return svg;
}
