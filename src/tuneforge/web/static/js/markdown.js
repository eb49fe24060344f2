// Model output is untrusted: markdown goes through marked, then DOMPurify, before it touches the DOM.
import DOMPurify from "../vendor/dompurify/purify.es.js";
import { marked } from "../vendor/marked/marked.esm.js";

marked.setOptions({ gfm: true, breaks: true });

// Links open in a new tab and cannot reach back into this page.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

/** Render `text` as sanitised markdown into `el` (replacing its content). */
export function renderMarkdown(el, text) {
  const html = marked.parse(text || "", { async: false });
  el.innerHTML = DOMPurify.sanitize(html, {
    FORBID_TAGS: ["style", "form", "input", "button", "iframe", "object", "embed"],
    FORBID_ATTR: ["style"],
  });
}
