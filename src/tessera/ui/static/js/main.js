// The single-page app: hash routes (#/page?query) → page modules rendering into <main>.
import { api, state } from "./api.js";
import { clear, errorBox, h } from "./ui.js";

const PAGES = {
  dashboard: () => import("./pages/dashboard.js"),
  profile: () => import("./pages/profile.js"),
  segments: () => import("./pages/segments.js"),
  builder: () => import("./pages/builder.js"),
  identity: () => import("./pages/identity.js"),
  datasets: () => import("./pages/datasets.js"),
  activation: () => import("./pages/activation.js"),
};

export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [page, query] = raw.split("?");
  return { page: PAGES[page] ? page : "dashboard", params: new URLSearchParams(query || "") };
}

export function go(page, params = {}) {
  const q = new URLSearchParams(params).toString();
  location.hash = `#/${page}${q ? "?" + q : ""}`;
}

let renderSeq = 0;
async function render() {
  const { page, params } = parseHash();
  const seq = ++renderSeq;
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.getElementById("nav").classList.remove("open");
  try {
    const mod = await PAGES[page]();
    if (seq !== renderSeq) return;
    const root = h("div.page", { "data-page": page });
    clear(main).append(root);
    await mod.render(root, params);
    document.title = `${root.querySelector("h1")?.textContent || page} · Tessera`;
  } catch (err) {
    if (seq === renderSeq) clear(main).append(errorBox(err));
  }
}

async function sandboxes() {
  const picker = document.getElementById("sandbox-picker");
  try {
    const data = await api("/data/foundation/sandbox-management/sandboxes");
    const list = data.sandboxes || data.children || [];
    for (const s of list) picker.append(h("option", { value: s.name, selected: s.name === state.sandbox }, s.title || s.name));
  } catch {
    picker.append(h("option", { value: state.sandbox }, state.sandbox));
  }
  if (!picker.options.length) picker.append(h("option", { value: state.sandbox }, state.sandbox));
  picker.addEventListener("change", () => {
    state.sandbox = picker.value;
    sessionStorage.setItem("tessera.sandbox", picker.value);
    render();
  });
}

document.getElementById("nav-toggle").addEventListener("click", (e) => {
  const nav = document.getElementById("nav");
  const open = nav.classList.toggle("open");
  e.currentTarget.setAttribute("aria-expanded", String(open));
});
window.addEventListener("hashchange", render);
sandboxes();
render();
