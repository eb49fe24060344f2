// New fine-tuning job form: model, files, method, hyperparameters ("auto" when left empty), suffix.
import { api, listAll, listModels } from "../api.js";
import { add, h, routeParams, toast } from "../dom.js";
import { t } from "../i18n.js";

function hyper(name, label, step) {
  return h("label.field.small", h("span", label),
    h("input", { name, type: "number", min: step === "1" ? "1" : "0", step, placeholder: t("common.auto") }));
}

export async function render(main) {
  const params = routeParams();
  const [{ bases, finetuned }, files] = await Promise.all([listModels(), listAll("files?purpose=fine-tune")]);
  const trainable = files.filter((f) => f.purpose === "fine-tune");
  const option = (value, label, selected) => h("option", { value, selected: value === selected }, label);

  const model = h("select", { name: "model", required: true },
    h("optgroup", { label: t("models.bases") }, bases.map((m) => option(m.id, m.id, params.model))),
    h("optgroup", { label: t("models.finetuned") }, finetuned.map((m) => option(m.id, m.id, params.model))));
  const fileOptions = (selected) => trainable.map((f) => option(f.id, `${f.filename} (${f.id})`, selected));
  const training = h("select", { name: "training_file", required: true }, fileOptions(params.training_file));
  const validation = h("select", { name: "validation_file" }, option("", t("common.none")),
    fileOptions(params.validation_file || ""));
  const method = h("select", { name: "method" },
    ["supervised", "dpo"].map((m) => option(m, t(`jobs.method.${m}`), params.method || "supervised")));
  const suffix = h("input", { name: "suffix", maxlength: 64, placeholder: t("jobs.suffix_placeholder"),
    value: params.suffix || "" });
  const submit = h("button.primary", { type: "submit" }, t("jobs.create"));

  async function create(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const hp = {};
    for (const key of ["n_epochs", "batch_size", "learning_rate_multiplier"]) {
      const value = String(form.get(key) || "").trim();
      hp[key] = value === "" ? "auto" : Number(value);
    }
    const body = {
      model: model.value, training_file: training.value,
      method: { type: method.value, [method.value]: { hyperparameters: hp } },
    };
    if (validation.value) body.validation_file = validation.value;
    if (suffix.value.trim()) body.suffix = suffix.value.trim();
    submit.disabled = true;
    try {
      const job = await api("fine_tuning/jobs", { method: "POST", body });
      toast(t("jobs.created", { id: job.id }));
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (err) {
      toast(err.message, "error");
      submit.disabled = false;
    }
  }

  const field = (label, input) => h("label.field", h("span", label), input);
  add(main, h("h1", t("jobs.new")),
    trainable.length === 0 ? h("p.card.warn", h("a", { href: "#/datasets" }, t("jobs.no_files"))) : null,
    h("form.card.job-form", { onsubmit: create },
      h("div.grid2",
        field(t("common.model"), model), field(t("jobs.method"), method),
        field(t("jobs.training_file"), training), field(t("jobs.validation_file"), validation)),
      h("fieldset", h("legend", t("jobs.hyperparameters")), h("div.row.wrap",
        hyper("n_epochs", t("jobs.n_epochs"), "1"), hyper("batch_size", t("jobs.batch_size"), "1"),
        hyper("learning_rate_multiplier", t("jobs.lr"), "any"))),
      field(t("jobs.suffix"), suffix),
      h("div.row", submit)));
}
