// Label lookup. All strings live in ../i18n/<lang>.js; only English exists today.
import en from "../i18n/en.js";

const tables = { en };
const lang = "en";

/** Translate `key`, replacing `{name}` placeholders from `vars`. Unknown keys show the key itself. */
export function t(key, vars = {}) {
  const text = (tables[lang] && tables[lang][key]) ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}
