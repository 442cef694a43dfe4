import { ui } from "../api.js";
import { card, errorBox, fmtNumber, fmtTime, h, table } from "../ui.js";

export async function render(root) {
  root.append(h("h1", "Destinations and exports"));
  let d;
  try {
    d = await ui("/activation");
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  root.append(
    card("Destinations", d.destinations.length
      ? table(["Name", "Type", "Segments", "Pending", "Delivered", "Last error"], d.destinations.map((x) => [
          x.name || x.id, x.type || x.kind || "",
          (x.segments || x.segmentIds || []).map((s) => s.segmentId || s).map((id) => h("a", { href: `#/segments?id=${encodeURIComponent(id)}` }, d.segmentNames[id] || id)),
          fmtNumber(x.state?.pending), fmtNumber(x.state?.delivered), x.state?.lastError || "–"]))
      : h("p.muted", "No destinations. Create one with POST /tessera/destinations or the CLI.")),
    card("Export jobs", d.exports.length
      ? table(["Job", "Status", "Created", "Profiles", "Destination"], d.exports.map((x) => [
          x.id, x.status, fmtTime(x.createTime || x.creationTime), fmtNumber(x.metrics?.profileExportTime ? x.metrics.exportedProfileCounter : x.metrics?.exportedProfileCounter), JSON.stringify(x.destination || {})]))
      : h("p.muted", "No export jobs yet.")),
    card("Schedules", d.schedules.length
      ? table(["Name", "Type", "Cron", "State"], d.schedules.map((x) => [x.name, x.type, x.schedule, x.state]))
      : h("p.muted", "No schedules.")),
  );
}
