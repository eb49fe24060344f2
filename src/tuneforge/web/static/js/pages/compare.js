// Compare: one prompt, two or more models side by side, streamed in parallel, with held-out evals.
import { add, fill, fmtNum, fmtPct, h, routeParams, toast } from "../dom.js";
import { t } from "../i18n.js";
import { allJobs, heldOutEval, jobForModel } from "./job_data.js";
import { bubble, modelSelect, samplingControls, streamChat } from "./chat_widgets.js";

export async function render(main) {
  const wanted = (routeParams().models || "").split(",").filter(Boolean);
  const jobs = await allJobs().catch(() => []);
  const columns = h("div.compare-grid");
  const pickers = h("div.pickers");
  let controllers = [];

  async function addPicker(selected) {
    const select = await modelSelect(selected, { name: "model", "aria-label": t("common.model") });
    const remove = h("button.ghost.tiny", { type: "button", onclick: () => row.remove() }, t("cmp.remove_model"));
    const row = h("div.picker", select, remove);
    if (!selected) {
      // A new picker defaults to a model not yet picked, so "Add model" is one click.
      const used = [...pickers.querySelectorAll("select")].map((s) => s.value);
      const free = [...select.options].find((o) => !used.includes(o.value));
      if (free) select.value = free.value;
    }
    pickers.append(row);
  }

  for (const id of wanted.length ? wanted : [null, null]) await addPicker(id);

  const system = h("textarea", { rows: 2, name: "system", placeholder: t("play.system_placeholder") });
  const prompt = h("textarea", { rows: 3, name: "prompt", placeholder: t("cmp.prompt_placeholder") });
  const sampling = samplingControls();
  const run = h("button.primary", { type: "submit" }, t("cmp.run"));
  const stop = h("button", { type: "button", hidden: true, onclick: () => controllers.forEach((c) => c.abort()) },
    t("play.stop"));

  function evalBox(modelId) {
    const job = jobForModel(modelId, jobs);
    if (!job) return h("p.muted.small", t("cmp.base_model"));
    const box = h("p.small.eval", `${t("cmp.eval")}: …`);
    heldOutEval(job).then((ev) => {
      box.textContent = ev
        ? `${t("cmp.eval")} (${t("chart.step")} ${ev.step}): ${t("jobs.loss")} ${fmtNum(ev.loss)}, ` +
          `${t("jobs.accuracy")} ${fmtPct(ev.accuracy)}`
        : t("cmp.eval_none");
      if (ev && ev.byLanguage) box.after(languageList(ev.byLanguage));
    }).catch(() => { box.textContent = t("cmp.eval_none"); });
    return box;
  }

  // The same figures per language of the validation answers (the job reports them when there are several),
  // so a model that learned its English half and not its Chinese one shows it.
  function languageList(byLanguage) {
    return h("ul.small.eval-languages", Object.entries(byLanguage).map(([code, m]) =>
      h("li", { dataset: { language: code } },
        `${t("cmp.eval_language", { language: t(`lang.${code}`), examples: m.examples })}: ` +
        `${t("jobs.loss")} ${fmtNum(m.loss)}, ${t("jobs.accuracy")} ${fmtPct(m.mean_token_accuracy)}`)));
  }

  async function submit(event) {
    event.preventDefault();
    const models = [...pickers.querySelectorAll("select")].map((s) => s.value);
    if (models.length < 2) { toast(t("cmp.need_two"), "error"); return; }
    const content = prompt.value.trim();
    if (!content) return;
    const messages = [
      ...(system.value.trim() ? [{ role: "system", content: system.value.trim() }] : []),
      { role: "user", content },
    ];
    fill(columns);
    controllers = models.map(() => new AbortController());
    run.hidden = true;
    stop.hidden = false;
    const replies = models.map((model) => {
      const reply = bubble("assistant");
      columns.append(h("section.card.column", { dataset: { model } }, h("h3.mono", model), evalBox(model), reply));
      return reply;
    });
    const streams = models.map((model, i) =>
      streamChat(replies[i], { model, messages, ...sampling.values() }, controllers[i].signal));
    await Promise.allSettled(streams);
    run.hidden = false;
    stop.hidden = true;
  }

  add(main,
    h("h1", t("cmp.title")),
    h("p.muted", t("cmp.intro")),
    h("form.card.compare-form", { onsubmit: submit },
      pickers,
      h("button.ghost", { type: "button", onclick: () => addPicker(null) }, t("cmp.add_model")),
      h("label.field", h("span", t("play.system")), system),
      h("label.field", h("span", t("cmp.prompt")), prompt),
      sampling.el,
      h("div.row", run, stop)),
    columns,
  );
  return () => controllers.forEach((c) => c.abort());
}
