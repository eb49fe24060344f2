// Models: bases and fine-tuned models with lineage (base, job, data, created) and actions.
import { api, listModels } from "../api.js";
import { add, fmtTime, h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { allJobs, jobForModel } from "./job_data.js";

export async function render(main) {
  const [{ bases, finetuned, aliases }, jobs] = await Promise.all([listModels(), allJobs().catch(() => [])]);
  const defaultBase = bases[0] ? bases[0].id : "";

  async function remove(model, row) {
    if (!confirm(t("common.confirm_delete", { name: model.id }))) return;
    try {
      await api(`models/${encodeURIComponent(model.id)}`, { method: "DELETE" });
      row.remove();
    } catch (err) { toast(err.message, "error"); }
  }

  function exportHint(model, cell) {
    cell.querySelector(".export")?.remove();
    cell.append(h("div.export.small", t("models.export_hint"),
      h("code", `tuneforge models export ${model.id} --format merged`)));
  }

  const chatLink = (id) => h("a.button.ghost.tiny", { href: `#/playground?model=${encodeURIComponent(id)}` },
    t("models.chat"));
  const compareLink = (ids) => h("a.button.ghost.tiny",
    { href: `#/compare?models=${ids.map(encodeURIComponent).join(",")}` }, t("models.compare"));

  const baseRows = bases.map((m) => h("tr", { dataset: { id: m.id } }, h("td.mono", m.id),
    h("td.mono.small", aliases.filter((a) => a.root === m.id).map((a) => a.id).join(", ") || "–"),
    h("td", fmtTime(m.created)), h("td.actions", chatLink(m.id))));

  // Checkpoints (ft:...:ckpt-step-N) are listed under the model they belong to, not as rows of their own.
  const isCkpt = (m) => /:ckpt-step-\d+$/.test(m.id);
  const ckptsOf = (id) => finetuned.filter((c) => isCkpt(c) && c.id.startsWith(`${id}:ckpt-step-`));
  const ftRows = finetuned.filter((m) => !isCkpt(m)).map((m) => {
    const job = jobForModel(m.id, jobs);
    const actions = h("td.actions", chatLink(m.id), compareLink([job ? job.model : defaultBase, m.id]),
      h("button.ghost.tiny", { onclick: () => exportHint(m, actions) }, t("models.export")));
    const row = h("tr", { dataset: { id: m.id } },
      h("td.mono.ft", m.id),
      h("td.lineage", job ? [
        h("div", t("models.from", { base: job.model })),
        h("div", h("a.mono", { href: `#/jobs/${encodeURIComponent(job.id)}` }, t("models.job", { id: job.id }))),
        h("div.mono.small", t("models.data", { file: job.training_file })),
      ] : h("span.muted", t("models.from", { base: m.parent || m.root || "?" })),
      ckptsOf(m.id).length ? h("div.small.ckpt-links", `${t("jobs.checkpoints")}: `, ckptsOf(m.id).map((c) =>
        h("a.mono", { href: `#/playground?model=${encodeURIComponent(c.id)}` }, c.id.split(":").pop()))) : null),
      h("td", fmtTime(m.created)), actions);
    actions.append(h("button.ghost.tiny.danger", { onclick: () => remove(m, row) }, t("common.delete")));
    return row;
  });

  const table = (headers, rows) => h("div.scroll", h("table.list.models",
    h("thead", h("tr", headers.map((k) => h("th", k && t(k))))), h("tbody", rows)));
  add(main, h("h1", t("models.title")),
    h("section.card", h("h2", t("models.finetuned")), ftRows.length
      ? table(["models.id", "models.lineage", "common.created", ""], ftRows)
      : h("p.muted", h("a", { href: "#/jobs/new" }, t("models.none_ft")))),
    h("section.card", h("h2", t("models.bases")),
      table(["models.id", "models.aliases", "common.created", ""], baseRows)));
}
