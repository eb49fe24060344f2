// Reading jobs: their metrics events (for curves and held-out evaluation) and model lineage.
import { api, listAll } from "../api.js";

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** All events of a job, oldest first (the API lists newest first). */
export async function jobEvents(jobId) {
  const events = await listAll(`fine_tuning/jobs/${encodeURIComponent(jobId)}/events`);
  return events.reverse();
}

/**
 * Keeps a job's events up to date cheaply: each `poll()` reads pages from the newest event back to the
 * first one already known. Every `fullEvery` polls (and on `full()`) it rereads everything, because
 * the server adds end-of-epoch metrics to existing step events.
 */
export class EventFeed {
  constructor(jobId, fullEvery = 10) {
    this.path = `fine_tuning/jobs/${encodeURIComponent(jobId)}/events`;
    this.byId = new Map();
    this.order = []; // ids, oldest first
    this.polls = 0;
    this.fullEvery = fullEvery;
  }

  async full() {
    const events = await listAll(this.path);
    this.byId = new Map(events.map((e) => [e.id, e]));
    this.order = events.map((e) => e.id).reverse();
    return this.events();
  }

  async poll() {
    this.polls += 1;
    if (this.order.length === 0 || this.polls % this.fullEvery === 0) return this.full();
    const fresh = [];
    let after = null;
    for (;;) {
      const page = await api(`${this.path}?limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      const known = page.data.findIndex((e) => this.byId.has(e.id));
      fresh.push(...(known >= 0 ? page.data.slice(0, known) : page.data));
      if (known >= 0 || !page.has_more || page.data.length === 0) break;
      after = page.data[page.data.length - 1].id;
    }
    for (const e of fresh.reverse()) {
      this.byId.set(e.id, e);
      this.order.push(e.id);
    }
    return this.events();
  }

  events() { return this.order.map((id) => this.byId.get(id)); }
}

/** Metrics dicts from `metrics` events, one per step (the latest wins), sorted by step. */
export function metricsPoints(events) {
  const byStep = new Map();
  for (const e of events) {
    if (e.type === "metrics" && e.data && typeof e.data.step === "number") {
      byStep.set(e.data.step, { ...(byStep.get(e.data.step) || {}), ...e.data });
    }
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** The job that produced a fine-tuned (or checkpoint) model id, if this project can see it. */
export function jobForModel(modelId, jobs) {
  const root = modelId.replace(/:ckpt-step-\d+$/, "");
  return jobs.find((j) => j.fine_tuned_model === modelId || j.fine_tuned_model === root) || null;
}

export async function allJobs() {
  return listAll("fine_tuning/jobs");
}

/**
 * The held-out evaluation of a job: the last full-validation metrics (end of epoch), else the last
 * step with validation metrics. Null when the job had no validation data.
 */
export async function heldOutEval(job) {
  if (!job.validation_file) return null;
  const points = metricsPoints(await jobEvents(job.id));
  const full = points.filter((p) => typeof p.full_valid_loss === "number").pop();
  if (full) {
    return { step: full.step, loss: full.full_valid_loss, accuracy: full.full_valid_mean_token_accuracy,
             byLanguage: full.full_valid_by_language || null };
  }
  const valid = points.filter((p) => typeof p.valid_loss === "number").pop();
  return valid ? { step: valid.step, loss: valid.valid_loss, accuracy: valid.valid_mean_token_accuracy } : null;
}

export async function getJob(jobId) {
  return api(`fine_tuning/jobs/${encodeURIComponent(jobId)}`);
}
