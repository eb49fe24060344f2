// One job: status, actions, live train/valid loss and accuracy curves, events and checkpoints.
import { api, fileContent } from "../api.js";
import { MetricChart } from "../chart.js";
import { add, badge, fill, fmtNum, fmtTime, h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { EventFeed, getJob, metricsPoints, TERMINAL } from "./job_data.js";

const POLL_MS = 1000;

async function download(fileId) {
  const blob = await fileContent(fileId);
  const meta = await api(`files/${encodeURIComponent(fileId)}`).catch(() => ({ filename: `${fileId}.csv` }));
  const a = h("a", { href: URL.createObjectURL(blob), download: meta.filename || `${fileId}.csv` });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function continueHref(job) {
  const q = new URLSearchParams({ model: job.fine_tuned_model, training_file: job.training_file });
  if (job.validation_file) q.set("validation_file", job.validation_file);
  if (job.user_provided_suffix) q.set("suffix", job.user_provided_suffix);
  return `#/jobs/new?${q}`;
}

export async function render(main, jobId) {
  const head = h("div.job-head");
  const progress = h("div.progress-wrap");
  const actions = h("div.row.wrap.actions");
  const lossBox = h("div.chart", { dataset: { chart: "loss" } });
  const accBox = h("div.chart", { dataset: { chart: "accuracy" } });
  const noMetrics = h("p.muted.small", t("jobs.no_metrics"));
  const eventsBox = h("ol.events");
  const ckptBox = h("div");
  add(main, h("p", h("a", { href: "#/jobs" }, `← ${t("jobs.list")}`)), head, actions, progress,
    h("section.card", h("div.charts", lossBox, accBox), noMetrics),
    h("div.grid2", h("section.card", h("h2", t("jobs.events")), eventsBox),
      h("section.card", h("h2", t("jobs.checkpoints")), ckptBox)));

  const series = (prefix) => [
    { label: t("jobs.train"), key: `train_${prefix}` },
    { label: t("jobs.valid"), key: `valid_${prefix}`, points: true },
    { label: t("jobs.full_valid"), key: `full_valid_${prefix}`, points: true },
  ];
  const lossChart = new MetricChart(lossBox, t("jobs.loss"), series("loss"));
  const accChart = new MetricChart(accBox, t("jobs.accuracy"), series("mean_token_accuracy"), [0, 1]);
  let timer = null;
  let stopped = false;
  let lastStatus = null;

  async function act(verb) {
    if (verb === "cancel" && !confirm(t("jobs.confirm_cancel", { id: jobId }))) return;
    try {
      await api(`fine_tuning/jobs/${encodeURIComponent(jobId)}/${verb}`, { method: "POST" });
      await tick();
    } catch (err) { toast(err.message, "error"); }
  }

  function renderJob(job, points) {
    // DPO jobs carry their settings under method.dpo (top-level hyperparameters is null, as OpenAI's).
    const kind = (job.method && job.method.type) || "supervised";
    const hp = job.hyperparameters || (job.method && job.method[kind] && job.method[kind].hyperparameters) || {};
    fill(head, h("h1.mono", job.id), h("div.row.wrap", badge(job.status),
      h("span", `${t("common.model")}: `, h("span.mono", job.model)),
      job.fine_tuned_model ? h("span", `→ `, h("span.mono.ft", job.fine_tuned_model)) : null,
      h("span.muted", fmtTime(job.created_at))),
    h("p.muted.small", `${t("jobs.hyperparameters")}: n_epochs=${hp.n_epochs ?? "auto"}, `
      + `batch_size=${hp.batch_size ?? "auto"}, learning_rate_multiplier=${hp.learning_rate_multiplier ?? "auto"}`
      + (kind === "dpo" ? `, beta=${hp.beta ?? "auto"} (DPO)` : "")
      + (job.trained_tokens ? ` · ${t("jobs.trained_tokens")}: ${job.trained_tokens}` : "")),
    job.error && job.error.message
      ? h("p.error", `${job.error.code || t("common.error")}: ${job.error.message}`) : null);

    const last = points[points.length - 1];
    fill(progress, last && last.total_steps ? h("div",
      h("div.small", t("jobs.step", { step: last.step, total: last.total_steps })),
      h("progress", { max: last.total_steps, value: last.step })) : "");

    const buttons = [];
    const running = !TERMINAL.has(job.status);
    if (running && job.status !== "paused") buttons.push(h("button", { onclick: () => act("pause") }, t("jobs.pause")));
    if (job.status === "paused") buttons.push(h("button", { onclick: () => act("resume") }, t("jobs.resume")));
    if (running) buttons.push(h("button.danger", { onclick: () => act("cancel") }, t("common.cancel")));
    if (job.result_files && job.result_files.length) {
      buttons.push(h("button", { onclick: () => download(job.result_files[0]).catch((e) => toast(e.message, "error")) },
        t("jobs.download")));
    }
    if (job.fine_tuned_model) {
      const ft = encodeURIComponent(job.fine_tuned_model);
      buttons.push(h("a.button.primary", { href: `#/playground?model=${ft}` }, t("jobs.chat")),
        h("a.button", { href: `#/compare?models=${encodeURIComponent(job.model)},${ft}` }, t("jobs.compare")),
        h("a.button", { href: continueHref(job) }, t("jobs.continue")));
    }
    fill(actions, ...buttons);
  }

  function renderEvents(events) {
    fill(eventsBox, ...events.slice().reverse().slice(0, 200).map((e) =>
      h(`li.${e.level || "info"}`, h("span.muted.small", fmtTime(e.created_at)), " ", e.message)));
  }

  async function renderCheckpoints() {
    const { data } = await api(`fine_tuning/jobs/${encodeURIComponent(jobId)}/checkpoints`);
    fill(ckptBox, data.length === 0 ? h("p.muted", t("common.empty")) : h("ul.ckpts", data.map((c) =>
      h("li", h("a.mono", { href: `#/playground?model=${encodeURIComponent(c.fine_tuned_model_checkpoint)}` },
        c.fine_tuned_model_checkpoint), h("span.muted.small",
        ` ${t("chart.step")} ${c.step_number} · ${t("jobs.loss")} ${fmtNum(c.metrics && c.metrics.train_loss)}`)))));
  }

  const feed = new EventFeed(jobId);

  async function tick() {
    const job = await getJob(jobId);
    const events = await (TERMINAL.has(job.status) ? feed.full() : feed.poll());
    const points = metricsPoints(events);
    renderJob(job, points);
    renderEvents(events);
    if (points.length) {
      noMetrics.hidden = true;
      lossChart.update(points);
      accChart.update(points);
    }
    main.dataset.points = String(points.length);
    main.dataset.status = job.status;
    if (job.status !== lastStatus) {
      lastStatus = job.status;
      renderCheckpoints().catch(() => {});
    }
    return job;
  }

  async function loop() {
    try {
      const job = await tick();
      if (TERMINAL.has(job.status)) { renderCheckpoints().catch(() => {}); return; }
    } catch (err) {
      if (err.status === 404 || err.status === 401) { fill(head, h("p.error", err.message)); return; }
      toast(err.message, "error"); // a blip (server restarting): keep polling
    }
    if (!stopped) timer = setTimeout(loop, POLL_MS);
  }
  await loop();
  return () => { stopped = true; clearTimeout(timer); lossChart.destroy(); accChart.destroy(); };
}
