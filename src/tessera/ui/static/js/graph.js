// The identity graph as SVG: a small force layout (graphs hold at most a few dozen identities).
import { fmtTime, h } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
export const TYPE_COLOURS = {
  COOKIE: "var(--cookie)", DEVICE: "var(--device)", EMAIL: "var(--email)", PHONE: "var(--phone)",
  CROSS_DEVICE: "var(--cross)", NON_PEOPLE: "var(--other)", PARTNER: "var(--other)",
};
const TYPE_NAMES = { COOKIE: "Cookie", DEVICE: "Device", EMAIL: "Email", PHONE: "Phone", CROSS_DEVICE: "Cross-device", NON_PEOPLE: "Non-people", PARTNER: "Partner" };

function s(tag, attrs = {}, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const k of kids) el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return el;
}

const key = (i) => `${i.namespace}:${i.id}`;

function layout(nodes, links, width, height) {
  const n = nodes.length;
  const pos = nodes.map((_, i) => ({
    x: width / 2 + Math.cos((2 * Math.PI * i) / n) * Math.min(width, height) * 0.33,
    y: height / 2 + Math.sin((2 * Math.PI * i) / n) * Math.min(width, height) * 0.33,
  }));
  if (n <= 1) return n ? [{ x: width / 2, y: height / 2 }] : [];
  const idx = new Map(nodes.map((nd, i) => [key(nd), i]));
  const edges = links.map((l) => [idx.get(key(l.a)), idx.get(key(l.b))]).filter(([a, b]) => a !== undefined && b !== undefined);
  const ideal = Math.min(140, Math.max(60, (Math.min(width, height) * 0.8) / Math.sqrt(n)));
  for (let it = 0; it < 300; it++) {
    const f = pos.map(() => ({ x: 0, y: 0 }));
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) {
        const dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
        const d2 = Math.max(dx * dx + dy * dy, 1);
        const rep = (ideal * ideal) / d2;
        f[i].x += dx * rep * 0.05; f[i].y += dy * rep * 0.05;
        f[j].x -= dx * rep * 0.05; f[j].y -= dy * rep * 0.05;
      }
    for (const [a, b] of edges) {
      const dx = pos[b].x - pos[a].x, dy = pos[b].y - pos[a].y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1;
      const k = ((d - ideal) / d) * 0.1;
      f[a].x += dx * k; f[a].y += dy * k; f[b].x -= dx * k; f[b].y -= dy * k;
    }
    const t = 1 - it / 300;
    for (let i = 0; i < n; i++) {
      pos[i].x += Math.max(-20, Math.min(20, f[i].x + (width / 2 - pos[i].x) * 0.01)) * t;
      pos[i].y += Math.max(-20, Math.min(20, f[i].y + (height / 2 - pos[i].y) * 0.01)) * t;
      pos[i].x = Math.max(40, Math.min(width - 40, pos[i].x));
      pos[i].y = Math.max(25, Math.min(height - 25, pos[i].y));
    }
  }
  return pos;
}

/**
 * Draw a graph; `onPair(a, b)` is called when two nodes are selected (click or Enter/Space).
 * Returns {element, highlight(links)}.
 */
export function drawGraph(graph, { onPair, showTimes = true } = {}) {
  const width = 720, height = 380;
  const pos = layout(graph.nodes, graph.links, width, height);
  const idx = new Map(graph.nodes.map((nd, i) => [key(nd), i]));
  const svg = s("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": `Identity graph with ${graph.nodes.length} identities and ${graph.links.length} links` });
  const lines = [];
  for (const l of graph.links) {
    const a = pos[idx.get(key(l.a))], b = pos[idx.get(key(l.b))];
    if (!a || !b) continue;
    const line = s("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y });
    line.append(s("title", {}, `${key(l.a)} — ${key(l.b)}\nfirst seen ${fmtTime(l.firstSeen)}, last seen ${fmtTime(l.lastSeen)}${l.datasetName ? "\nfrom " + l.datasetName : ""}`));
    line.dataset.pair = [key(l.a), key(l.b)].sort().join("|");
    lines.push(line);
    svg.append(line);
    if (showTimes && graph.links.length <= 20)
      svg.append(s("text", { class: "lt", x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 3, "text-anchor": "middle" }, fmtTime(l.lastSeen).replace(" UTC", "").slice(0, 16)));
  }
  let selected = [];
  const groups = [];
  graph.nodes.forEach((nd, i) => {
    const p = pos[i];
    const label = nd.id.length > 18 ? nd.id.slice(0, 16) + "…" : nd.id;
    const g = s("g", { class: "node", tabindex: "0", role: "button", transform: `translate(${p.x},${p.y})`,
      "aria-label": `${nd.namespace} ${nd.id}${nd.primary ? " (primary)" : ""}, ${TYPE_NAMES[nd.type] || nd.type}. Select two identities to see why they are linked.`,
      "data-identity": key(nd) });
    g.append(s("circle", { r: nd.primary ? 14 : 10, fill: TYPE_COLOURS[nd.type] || "var(--other)" }));
    g.append(s("text", { y: nd.primary ? 28 : 24, "text-anchor": "middle" }, `${nd.namespace}: ${label}`));
    const pick = () => {
      if (selected.includes(i)) selected = selected.filter((x) => x !== i);
      else selected = [...selected.slice(-1), i];
      groups.forEach((gg, j) => gg.classList.toggle("selected", selected.includes(j)));
      if (selected.length === 2 && onPair) onPair(graph.nodes[selected[0]], graph.nodes[selected[1]]);
    };
    g.addEventListener("click", pick);
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
    groups.push(g);
    svg.append(g);
  });
  function highlight(chain) {
    const pairs = new Set(chain.map((l) => [key(l.from || l.a), key(l.to || l.b)].sort().join("|")));
    for (const line of lines) line.classList.toggle("hl", pairs.has(line.dataset.pair));
  }
  return { element: svg, highlight };
}

export function legend(types) {
  const shown = [...new Set(types)];
  return h("div.legend", { "aria-label": "Node colours by namespace type" },
    shown.map((t) => h("span", h("i", { style: `background:${TYPE_COLOURS[t] || "var(--other)"}` }), TYPE_NAMES[t] || t)));
}
