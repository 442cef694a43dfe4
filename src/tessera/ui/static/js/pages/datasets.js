import { postWithProgress, ui } from "../api.js";
import { card, clear, errorBox, field, fmtNumber, fmtTime, h, select, table } from "../ui.js";

export async function render(root, params) {
  root.append(h("h1", "Datasets and batches"));
  const d = await ui("/datasets");
  const chosen = params.get("id") || d.datasets[0]?.id;
  root.append(card("Datasets", table(["Name", "Schema", "Profile", "Batches", ""], d.datasets.map((ds) => [
    ds.name, ds.schemaRef?.id?.split("/").pop() || "", (ds.tags?.unifiedProfile || []).join(" ") || "–", fmtNumber(ds.batchList.length),
    h("a", { href: `#/datasets?id=${encodeURIComponent(ds.id)}` }, "Batches")]))));

  // upload
  const dsSel = select(d.datasets.map((x) => [x.id, x.name]), chosen, { name: "dataset" });
  const file = h("input", { type: "file", name: "file", accept: ".json,.jsonl,.ndjson,.csv,.parquet" });
  const progress = h("progress.progress#upload-progress", { max: 100, value: 0, "aria-label": "Upload progress" });
  const status = h("div#upload-status", { "aria-live": "polite" });
  const form = h("form", { "aria-label": "Upload a file" }, h("div.row", field("Dataset", dsSel), field("File (JSON, JSON lines, CSV, Parquet)", file),
    h("button.primary", { type: "submit" }, "Upload and ingest")), progress, status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(status);
    const f = file.files[0];
    if (!f) { status.append(h("div.alert", { role: "alert" }, "Choose a file first.")); return; }
    const buf = new Uint8Array(await f.arrayBuffer());
    let bin = "";
    for (let i = 0; i < buf.length; i += 0x8000) bin += String.fromCharCode(...buf.subarray(i, i + 0x8000));
    progress.value = 0;
    status.append(h("p.muted", "Uploading…"));
    try {
      const r = await postWithProgress(`/tessera/ui-api/datasets/${encodeURIComponent(dsSel.value)}/upload`, { fileName: f.name, content: btoa(bin) }, (x) => {
        progress.value = Math.round(x * 100);
        if (x >= 1) clear(status).append(h("p.muted", "Processing records…"));
      });
      progress.value = 100;
      clear(status).append(batchSummary(r.batch), diagnostics(r.errors));
    } catch (err) { clear(status).append(errorBox(err)); }
  });
  root.append(card("Upload a file", form));

  const ds = d.datasets.find((x) => x.id === chosen);
  if (!ds) return;
  const errBox = h("div#batch-errors", { "aria-live": "polite" });
  root.append(card(`Batches of ${ds.name}`, ds.batchList.length
    ? table(["Batch", "Status", "Created", "Records", "Ingested", "Rejected", ""], ds.batchList.map((b) => [
        b.id, b.status, fmtTime(b.created), fmtNumber(b.metrics.inputRecordCount), fmtNumber(b.metrics.outputRecordCount),
        b.metrics.failedRecordCount ? h("span.pill.no", fmtNumber(b.metrics.failedRecordCount)) : "0",
        b.metrics.failedRecordCount ? h("button.small", { type: "button", onclick: async () => {
          try { const r = await ui(`/batches/${encodeURIComponent(b.id)}/errors`, { query: { limit: 200 } }); clear(errBox).append(h("h3", `Errors of batch ${b.id}`), diagnostics(r.errors)); }
          catch (err) { clear(errBox).append(errorBox(err)); } } }, "Diagnostics") : ""]))
    : h("p.muted", "No batches yet."), errBox));
}

function batchSummary(b) {
  const m = b.metrics;
  const cls = b.status === "success" ? "p.okbox" : "p.notice";
  return h(`${cls}#batch-result`, `Batch ${b.id}: ${b.status}. ${fmtNumber(m.inputRecordCount)} records read, ${fmtNumber(m.outputRecordCount)} ingested, ${fmtNumber(m.failedRecordCount)} rejected.`,
    (b.errors || []).length ? ` File problems: ${b.errors.map((e) => e.message || e.description || JSON.stringify(e)).join("; ")}` : "");
}

export function diagnostics(errors) {
  if (!errors.length) return h("p.muted", "No per-record errors.");
  return table(["Row", "Field", "Problem", "Code"], errors.map((e) => [
    String(e.row ?? e.index ?? ""), e.path || e.report?.path || "", e.message || e.detail || "", e.code || e.error_code || ""]), "Per-record diagnostics");
}
