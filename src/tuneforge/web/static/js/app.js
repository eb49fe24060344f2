// Hash router and page shell. Each page module exports render(main, params) and may return a
// cleanup function that runs when the user navigates away (stops polling and streams).
import { setApiKey, apiKey } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { t } from "./i18n.js";

const PAGES = [
  ["playground", () => import("./pages/playground.js")],
  ["compare", () => import("./pages/compare.js")],
  ["datasets", () => import("./pages/datasets.js")],
  ["jobs", () => import("./pages/jobs.js")],
  ["models", () => import("./pages/models.js")],
];

let cleanup = null;

function buildShell() {
  document.title = t("app.title");
  const nav = h("nav.nav", PAGES.map(([name]) =>
    h("a", { href: `#/${name}`, dataset: { page: name } }, t(`nav.${name}`))));
  const keyButton = h("button.ghost.key", {
    title: t("nav.api_key"),
    onclick: () => {
      const value = prompt(t("apikey.prompt"), apiKey());
      if (value !== null) { setApiKey(value.trim()); route(); }
    },
  }, t("nav.api_key"));
  document.body.append(
    h("header.top", h("a.brand", { href: "#/playground" }, t("app.title")), nav, keyButton),
    h("main#main"),
  );
}

async function route() {
  const path = (location.hash.replace(/^#\/?/, "").split("?")[0] || "playground").split("/");
  const entry = PAGES.find(([name]) => name === path[0]) || PAGES[0];
  for (const a of document.querySelectorAll(".nav a")) a.classList.toggle("active", a.dataset.page === entry[0]);
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  const main = clear(document.getElementById("main"));
  main.dataset.page = entry[0];
  try {
    const page = await entry[1]();
    cleanup = (await page.render(main, path.slice(1).map(decodeURIComponent))) || null;
  } catch (err) {
    main.append(h("p.error", `${t("common.error")}: ${err.message}`));
    toast(err.message, "error");
  }
}

buildShell();
window.addEventListener("hashchange", route);
route();
