// Pieces shared by the Playground and Compare pages: model picker, sampling controls, a streamed reply.
import { listModels, stream } from "../api.js";
import { h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { renderMarkdown } from "../markdown.js";

/** A <select> of every model (bases first, then fine-tuned), preselecting `selected` when present. */
export async function modelSelect(selected, attrs = {}) {
  const { bases, finetuned } = await listModels();
  const group = (label, models) => h("optgroup", { label },
    models.map((m) => h("option", { value: m.id, selected: m.id === selected }, m.id)));
  const select = h("select", attrs, group(t("models.bases"), bases), group(t("models.finetuned"), finetuned));
  if (selected && ![...bases, ...finetuned].some((m) => m.id === selected)) {
    select.prepend(h("option", { value: selected, selected: true }, selected));
  }
  return select;
}

/** Temperature / top_p / max tokens inputs; returns {el, values()}. */
export function samplingControls() {
  const num = (name, value, min, max, step) => h("input", { type: "number", name, value, min, max, step });
  const temperature = num("temperature", "0.7", "0", "2", "0.1");
  const topP = num("top_p", "1", "0", "1", "0.05");
  const maxTokens = num("max_tokens", "256", "1", "4096", "1");
  const field = (label, input) => h("label.field.small", h("span", label), input);
  return {
    el: h("div.row.wrap", field(t("play.temperature"), temperature), field(t("play.top_p"), topP),
      field(t("play.max_tokens"), maxTokens)),
    values: () => ({
      temperature: Number(temperature.value), top_p: Number(topP.value), max_tokens: Number(maxTokens.value),
    }),
  };
}

/** A message bubble whose markdown body can be re-rendered as text streams in. */
export function bubble(role, text = "") {
  const body = h("div.md");
  const copy = h("button.ghost.tiny", {
    onclick: async () => {
      await navigator.clipboard.writeText(el.dataset.text || "").catch(() => {});
      copy.textContent = t("common.copied");
      setTimeout(() => { copy.textContent = t("common.copy"); }, 1200);
    },
  }, t("common.copy"));
  const el = h(`div.msg.${role}`, h("div.msg-head", h("span.role", t(`play.role.${role}`)),
    role === "assistant" ? copy : null), body);
  let pending = false;
  el.setText = (value) => {
    el.dataset.text = value;
    if (pending) return;
    pending = true; // re-render at most once per frame while tokens arrive
    requestAnimationFrame(() => { pending = false; renderMarkdown(body, el.dataset.text); });
  };
  el.setText(text);
  return el;
}

/**
 * Stream a chat completion into `target` (a bubble). Resolves with the full text; an abort keeps what
 * arrived. Errors are shown in the bubble and as a toast.
 */
export async function streamChat(target, request, signal) {
  let text = "";
  target.classList.add("streaming");
  try {
    await stream("chat/completions", request, (chunk) => {
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) { text += delta.content; target.setText(text); }
    }, signal);
  } catch (err) {
    if (err.name === "AbortError") {
      text += ` ${t("play.stopped")}`;
    } else {
      target.classList.add("failed");
      text += `\n\n**${t("common.error")}:** ${err.message}`;
      toast(err.message, "error");
    }
    target.setText(text);
  } finally {
    target.classList.remove("streaming");
  }
  return text;
}
