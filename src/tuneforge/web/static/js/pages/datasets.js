// Datasets: check a file before storing it (findings by line, statistics, trainer's view), then
// upload it; list, inspect and delete stored files.
import { api, listAll } from "../api.js";
import { add, badge, clear, fill, fmtBytes, fmtTime, h, toast } from "../dom.js";
import { t } from "../i18n.js";

/** POST /v1/tuneforge/validate with either a File (not stored) or the id of a stored file. */
async function validate({ file, fileId }) {
  const form = new FormData();
  if (file) form.append("file", file, file.name); else form.append("file_id", fileId);
  return api("tuneforge/validate", { method: "POST", body: form });
}

function statsGrid(stats) {
  const show = (v) => (typeof v === "number" ? Number(v.toFixed(2)).toLocaleString() : String(v));
  return h("div.stats", Object.entries(stats || {}).map(([key, value]) => h("div.stat",
    h("div.stat-k", key.replaceAll("_", " ")),
    value && typeof value === "object" && !Array.isArray(value)
      ? h("div.stat-v.dist", Object.entries(value).map(([k, v]) => `${k} ${show(v)}`).join(" · "))
      : h("div.stat-v", Array.isArray(value) ? value.join(", ") : show(value)))));
}

function findingsTable(findings) {
  if (!findings.length) return h("p.ok", t("ds.no_findings"));
  return h("div.scroll", h("table.findings",
    h("thead", h("tr", ["ds.line", "ds.severity", "ds.field", "ds.code", "ds.message"].map((k) => h("th", t(k))))),
    h("tbody", findings.map((f) => h(`tr.${f.severity}`, { dataset: { line: f.line ?? "" } },
      f.line == null ? h("td.num", t("ds.whole_file")) : h("td.num", { dataset: { label: t("ds.line") } }, f.line),
      h("td", badge(f.severity)), h("td.mono", f.field ?? ""), h("td.mono", f.code ?? ""), h("td", f.message))))));
}

function previewBlock(preview) {
  if (!preview || !preview.length) return null;
  return h("div",
    h("h3", t("ds.preview")), h("p.muted.small", t("ds.preview_hint")),
    preview.map((ex) => h("div.example",
      h("div.example-head", `${t("ds.line")} ${ex.line}`, " · ", t("ds.trained_tokens", { n: ex.n_trained_tokens }),
        ex.truncated ? h("span.badge.s-failed", t("ds.truncated")) : null),
      h("pre.tokens", ex.segments.map((s) => (s.trained ? h("mark", s.text) : h("span", s.text)))))));
}

export function reportView(report, title) {
  return h("section.card.report", { dataset: { ok: String(report.ok) } },
    h("h2", title),
    h("p", h(`span.badge.${report.ok ? "s-succeeded" : "s-failed"}`, report.ok ? t("ds.ok") : t("ds.not_ok")),
      "  ", `${t("ds.format")}: ${report.format} · ${t("ds.examples")}: ${report.n_examples}`),
    h("h3", `${t("ds.findings")} (${report.findings.length})`), findingsTable(report.findings),
    h("h3", t("ds.stats")), statsGrid(report.stats),
    previewBlock(report.preview));
}

export async function render(main) {
  const reportBox = h("div");
  const filesBox = h("div");
  const picker = h("input", { type: "file", accept: ".jsonl,.json,.csv,.txt", hidden: true,
    onchange: () => picker.files[0] && check(picker.files[0]) });
  const drop = h("div.dropzone", { tabindex: 0, role: "button", onclick: () => picker.click(),
    onkeydown: (e) => (e.key === "Enter" || e.key === " ") && picker.click() },
  h("strong", t("ds.drop")), h("span.muted.small", t("ds.drop_hint")), picker);
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) check(e.dataTransfer.files[0]);
  });

  async function check(file) {
    fill(reportBox, h("p.muted", t("ds.checking", { name: file.name })));
    try {
      const report = await validate({ file });
      // A file with errors may still be stored (to fix later), but the button no longer invites it.
      const store = h(report.ok ? "button.primary" : "button", { onclick: () => upload(file, store) },
        t("ds.store", { name: file.name }));
      fill(reportBox, reportView(report, t("ds.report_for", { name: file.name })));
      reportBox.firstChild.append(h("div.row", store));
    } catch (err) {
      fill(reportBox, h("p.error", err.message));
    } finally {
      picker.value = "";
    }
  }

  async function upload(file, button) {
    button.disabled = true;
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", file, file.name);
    try {
      const stored = await api("files", { method: "POST", body: form });
      toast(t("ds.stored", { id: stored.id }));
      button.replaceWith(h("span.ok", t("ds.stored", { id: stored.id })), " ",
        h("a.button", { href: `#/jobs/new?training_file=${encodeURIComponent(stored.id)}` }, t("ds.train")));
      await refresh();
    } catch (err) {
      button.disabled = false;
      toast(err.message, "error");
    }
  }

  async function inspect(f) {
    fill(reportBox, h("p.muted", t("ds.checking", { name: f.filename })));
    try {
      fill(reportBox, reportView(await validate({ fileId: f.id }), t("ds.report_for", { name: f.filename })));
      reportBox.scrollIntoView({ behavior: "smooth" });
    } catch (err) {
      fill(reportBox, h("p.error", err.message));
    }
  }

  async function remove(f) {
    if (!confirm(t("common.confirm_delete", { name: f.filename }))) return;
    try { await api(`files/${encodeURIComponent(f.id)}`, { method: "DELETE" }); await refresh(); }
    catch (err) { toast(err.message, "error"); }
  }

  async function refresh() {
    const files = await listAll("files");
    clear(filesBox).append(h("h2", t("ds.files")), files.length === 0 ? h("p.muted", t("common.empty")) :
      h("div.scroll", h("table.list.files",
        h("thead", h("tr", ["ds.filename", "ds.purpose", "ds.size", "common.created", ""]
          .map((k) => h("th", k && t(k))))),
        h("tbody", files.map((f) => h("tr", { dataset: { id: f.id } },
          h("td", h("div", f.filename), h("div.mono.muted.small", f.id)), h("td", f.purpose),
          h("td.num", fmtBytes(f.bytes)), h("td", fmtTime(f.created_at)),
          h("td.actions",
            f.purpose === "fine-tune" ? h("button.ghost.tiny", { onclick: () => inspect(f) }, t("ds.inspect")) : null,
            f.purpose === "fine-tune" ? h("a.button.ghost.tiny",
              { href: `#/jobs/new?training_file=${encodeURIComponent(f.id)}` }, t("ds.train")) : null,
            h("button.ghost.tiny.danger", { onclick: () => remove(f) }, t("common.delete")))))))));
  }

  add(main, h("h1", t("ds.title")), drop, reportBox, h("section.card", filesBox));
  await refresh().catch((err) => filesBox.append(h("p.error", err.message)));
}
