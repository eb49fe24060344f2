// Client for the public /v1 API: JSON calls, OpenAI-shaped errors, cursor pagination, SSE streams.

const KEY = "tuneforge.apiKey";

export function apiKey() { return localStorage.getItem(KEY) || ""; }
export function setApiKey(value) {
  if (value) localStorage.setItem(KEY, value); else localStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const key = apiKey();
  return { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...extra };
}

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `Request failed with HTTP ${status}`);
    this.status = status;
    this.code = err.code;
    this.param = err.param;
  }
}

async function check(res) {
  if (res.ok) return res;
  let body = null;
  try { body = await res.json(); } catch { /* not JSON: keep the status */ }
  throw new ApiError(res.status, body);
}

/** JSON request to /v1/<path>. `body` is JSON unless it is FormData. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const isForm = body instanceof FormData;
  const res = await fetch(`/v1/${path}`, {
    method, signal,
    headers: headers(body && !isForm ? { "Content-Type": "application/json" } : {}),
    body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
  });
  await check(res);
  return res.json();
}

/** Every item of a cursor-paginated list (follows `has_more` with `after=<last id>`). */
export async function listAll(path, { limit = 100, max = 2000 } = {}) {
  const items = [];
  let after = null;
  while (items.length < max) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    items.push(...page.data);
    if (!page.has_more || page.data.length === 0) break;
    after = page.data[page.data.length - 1].id;
  }
  return items;
}

/** Raw bytes of a file (GET /v1/files/{id}/content) as a Blob. */
export async function fileContent(id) {
  const res = await check(await fetch(`/v1/files/${encodeURIComponent(id)}/content`, { headers: headers() }));
  return res.blob();
}

/**
 * POST with `stream: true` and call onChunk(json) for every SSE `data:` event until `[DONE]`.
 * Lines starting with ":" are keep-alives; an event carrying {"error": ...} throws.
 */
export async function stream(path, body, onChunk, signal) {
  const res = await check(await fetch(`/v1/${path}`, {
    method: "POST", signal,
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ ...body, stream: true }),
  }));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r?\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length === 0) continue;
        const payload = data.join("\n");
        data = [];
        if (payload.startsWith("[DONE]")) return;
        const json = JSON.parse(payload);
        if (json.error) throw new ApiError(500, json);
        onChunk(json);
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      }
    }
  }
}

/**
 * Models from GET /v1/models: fine-tuned (ft: ids, legacy :ft- ids), bases, and aliases (OpenAI names
 * such as gpt-4o-mini that point at a base: `root` names the target).
 */
export async function listModels() {
  const { data } = await api("models");
  const isFt = (m) => m.id.startsWith("ft:") || m.id.includes(":ft-");
  const isAlias = (m) => !isFt(m) && m.root && m.root !== m.id;
  return {
    all: data,
    finetuned: data.filter(isFt),
    bases: data.filter((m) => !isFt(m) && !isAlias(m)),
    aliases: data.filter(isAlias),
  };
}
