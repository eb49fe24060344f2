// Tiny DOM helpers. Text always goes in as text nodes, so data from the server never becomes markup.

/** h("div.card#id", {onclick, ...attrs}, child, [children], "text") */
export function h(tag, attrs = {}, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || "div");
  for (const part of rest) {
    if (part.startsWith(".")) el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && key !== "list" && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Append children to `el`; null/false children are skipped (Element.append would print "null"). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

/** Replace the content of `el`; null/false children are skipped (replaceChildren would print "null"). */
export function fill(el, ...children) {
  append(clear(el), children);
  return el;
}

/** A short message at the bottom of the screen; errors stay until clicked. */
export function toast(message, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div#toasts", { role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h(`div.toast.${kind}`, { onclick: () => item.remove() }, message);
  box.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 4000);
}

export function fmtTime(unix) {
  if (!unix) return "";
  return new Date(unix * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let i = -1;
  do { n /= 1024; i += 1; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtNum(x, digits = 3) {
  return typeof x === "number" ? Number(x.toFixed(digits)).toString() : "–";
}

export function fmtPct(x) {
  return typeof x === "number" ? `${(x * 100).toFixed(1)}%` : "–";
}

export function badge(status) {
  return h(`span.badge.s-${String(status).replace(/[^a-z_]/g, "")}`, status);
}

/** Query parameters of the current hash route: #/jobs/new?model=x → {model: "x"}. */
export function routeParams() {
  const q = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(q));
}
