// Message markdown: marked (no raw HTML) -> DOMPurify (allow-list) -> safe HTML.
// Nothing from message content can run script, attach handlers, load remote images or set styles.
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import go from "highlight.js/lib/languages/go";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { Marked, type TokenizerAndRendererExtension } from "marked";

for (const [name, lang] of Object.entries({ bash, css, go, javascript, json, python, rust, sql, typescript, xml, yaml })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(["sh", "shell"], { languageName: "bash" });
hljs.registerAliases(["js"], { languageName: "javascript" });
hljs.registerAliases(["ts"], { languageName: "typescript" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["html"], { languageName: "xml" });
hljs.registerAliases(["yml"], { languageName: "yaml" });

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

let myUsername = "";
export function setMentionSelf(username: string): void {
  myUsername = username.toLowerCase();
}

const mention: TokenizerAndRendererExtension = {
  name: "mention",
  level: "inline",
  start(src: string) {
    const m = src.match(/(?:^|[^\p{L}\p{N}_@.])@[\p{L}\p{N}_]/u);
    return m && m.index !== undefined ? m.index + m[0].indexOf("@") : undefined;
  },
  tokenizer(src: string) {
    const m = /^@([\p{L}\p{N}_][\p{L}\p{N}_.-]*)/u.exec(src);
    if (!m) return undefined;
    return { type: "mention", raw: m[0], name: m[1].replace(/[.-]+$/, "") , text: m[0] };
  },
  renderer(token) {
    const name = String(token.name);
    const self = name.toLowerCase() === myUsername || name === "channel" || name === "here";
    return `<span class="mention${self ? " mention-me" : ""}">@${escapeHtml(name)}</span>${escapeHtml(String(token.raw).slice(name.length + 1))}`;
  },
};

const marked = new Marked({ gfm: true, breaks: true, async: false });
marked.use({
  extensions: [mention],
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
    image({ href, text }) {
      return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`;
    },
    code({ text, lang }) {
      const language = (lang ?? "").trim().split(/\s+/)[0];
      const body =
        language && hljs.getLanguage(language)
          ? hljs.highlight(text, { language, ignoreIllegals: true }).value
          : escapeHtml(text);
      return `<pre><code class="hljs">${body}</code></pre>`;
    },
  },
});

const ALLOWED_TAGS = [
  "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
  "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
];
const SAFE_URL = /^(?:https?:|mailto:)/i;

let hooked = false;
function purifier(): typeof DOMPurify {
  if (!hooked) {
    DOMPurify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A") {
        const href = node.getAttribute("href") ?? "";
        if (!SAFE_URL.test(href)) node.removeAttribute("href");
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer nofollow");
      }
      const cls = node.getAttribute("class");
      if (cls && !/^(?:hljs[\w -]*|mention(?: mention-me)?|language-[\w-]+)$/.test(cls)) node.removeAttribute("class");
    });
    hooked = true;
  }
  return DOMPurify;
}

// marked's output (with highlight.js's markup) by text: parsing and highlighting are done once per
// text, but what is shown is sanitised every time (the cache holds unsanitised HTML). Bounded:
// cleared when it outgrows a long channel's history.
const parsed = new Map<string, string>();
const PARSED_LIMIT = 20_000;

// Text with none of these has no markdown, no links and no mentions: it is one escaped paragraph.
const PLAIN = /^[^*_`~[\]<>&#|!\\:@\n\r]*$/;
const BLOCK_START = /^(?: {4}|\t|\s*(?:[-+>=]|\d+[.)]))/;

/** Safe HTML for a message's markdown text. */
export function renderMarkdown(text: string): string {
  if (PLAIN.test(text) && !BLOCK_START.test(text) && !/www\./i.test(text)) {
    return text.trim() ? `<p>${escapeHtml(text.trim())}</p>` : "";
  }
  const key = `${myUsername}\u0000${text}`;
  let raw = parsed.get(key);
  if (raw === undefined) {
    raw = marked.parse(text) as string;
    if (parsed.size >= PARSED_LIMIT) parsed.clear();
    parsed.set(key, raw);
  }
  return purifier().sanitize(raw, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: ["href", "class", "title"],
    ALLOW_DATA_ATTR: false,
    ALLOWED_URI_REGEXP: SAFE_URL,
  }) as string;
}
