// Playground: multi-turn chat with any model, streamed replies, stop, copy, clear.
import { add, fill, h, routeParams } from "../dom.js";
import { t } from "../i18n.js";
import { bubble, modelSelect, samplingControls, streamChat } from "./chat_widgets.js";

export async function render(main) {
  const params = routeParams();
  const history = [];
  let controller = null;

  const model = await modelSelect(params.model, { name: "model", "aria-label": t("play.model") });
  const system = h("textarea", { rows: 2, name: "system", placeholder: t("play.system_placeholder") });
  const sampling = samplingControls();
  const log = h("div.chat-log", h("p.muted.empty", t("play.empty")));
  const input = h("textarea", { rows: 2, name: "message", placeholder: t("play.input_placeholder") });
  const send = h("button.primary", { type: "submit" }, t("play.send"));
  const stop = h("button", { type: "button", hidden: true, onclick: () => controller && controller.abort() },
    t("play.stop"));
  const clearBtn = h("button.ghost", {
    type: "button",
    onclick: () => {
      if (controller) controller.abort();
      history.length = 0;
      fill(log, h("p.muted.empty", t("play.empty")));
    },
  }, t("play.clear"));

  async function submit(event) {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || controller) return;
    log.querySelector(".empty")?.remove();
    input.value = "";
    history.push({ role: "user", content });
    log.append(bubble("user", content));
    const reply = bubble("assistant");
    log.append(reply);
    reply.scrollIntoView({ block: "end" });
    const messages = system.value.trim() ? [{ role: "system", content: system.value.trim() }, ...history] : history;
    controller = new AbortController();
    send.hidden = true;
    stop.hidden = false;
    const text = await streamChat(reply, { model: model.value, messages: [...messages], ...sampling.values() },
      controller.signal);
    history.push({ role: "assistant", content: text });
    controller = null;
    send.hidden = false;
    stop.hidden = true;
    input.focus();
  }

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
  });

  add(main,
    h("h1", t("play.title")),
    h("div.play",
      h("aside.card.settings",
        h("label.field", h("span", t("play.model")), model),
        h("label.field", h("span", t("play.system")), system),
        sampling.el),
      h("section.card.chat", log,
        h("form.composer", { onsubmit: submit }, input, h("div.row", send, stop, clearBtn)))),
  );
  return () => controller && controller.abort();
}
