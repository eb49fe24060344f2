// Jobs: #/jobs (list), #/jobs/new (form), #/jobs/<id> (detail with live curves).
import { add, badge, fill, fmtTime, h } from "../dom.js";
import { t } from "../i18n.js";
import { allJobs, TERMINAL } from "./job_data.js";

export async function render(main, args) {
  if (args[0] === "new") return (await import("./job_form.js")).render(main);
  if (args[0]) return (await import("./job_detail.js")).render(main, args[0]);

  const table = h("div");
  let timer = null;
  async function refresh() {
    const jobs = await allJobs();
    fill(table, jobs.length === 0 ? h("p.muted", t("common.empty")) : h("div.scroll", h("table.list.jobs",
      h("thead", h("tr", ["jobs.id", "common.status", "jobs.base", "jobs.result", "common.created"]
        .map((k) => h("th", t(k))))),
      h("tbody", jobs.map((j) => h("tr", { dataset: { id: j.id } },
        h("td", h("a.mono", { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id)), h("td", badge(j.status)),
        h("td.mono", j.model), h("td.mono", j.fine_tuned_model || "–"), h("td", fmtTime(j.created_at))))))));
    // Keep polling while something is still moving.
    timer = jobs.some((j) => !TERMINAL.has(j.status)) ? setTimeout(() => refresh().catch(() => {}), 3000) : null;
  }
  add(main,
    h("div.row.between", h("h1", t("jobs.list")), h("a.button.primary", { href: "#/jobs/new" }, t("jobs.new"))),
    h("section.card", table));
  await refresh();
  return () => clearTimeout(timer);
}
