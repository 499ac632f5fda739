// Code highlighting, loaded on first use (see features.ts): one lowlight (highlight.js) instance
// for the page, with each language's grammar its own small chunk, registered when a code block
// first names it. A block in a language not (yet) loaded is shown plain.
import type { Element, Root } from "hast";
import { createLowlight } from "lowlight";
import { toText } from "hast-util-to-text";
import { visit } from "unist-util-visit";
import type { LanguageFn } from "highlight.js";
import "highlight.js/styles/github.css";

const lowlight = createLowlight();

// Every grammar highlight.js ships, each loaded only when asked for.
const grammars = import.meta.glob<LanguageFn>(["/node_modules/highlight.js/es/languages/*.js", "!**/*.js.js"], {
  import: "default",
});
const grammarPath = (name: string) => `/node_modules/highlight.js/es/languages/${name}.js`;

/** A fence's language as highlight.js names it (`py` → `python`), or null if none has it. */
function grammarName(name: string): string | null {
  const canonical = __HLJS_ALIASES__[name] ?? name;
  return grammarPath(canonical) in grammars ? canonical : null;
}

export function hasLanguage(name: string): boolean {
  const canonical = grammarName(name);
  return canonical !== null && lowlight.registered(canonical);
}

/** Loads and registers the grammar of `name`; false when there is none or it is already there. */
export async function registerLanguage(name: string): Promise<boolean> {
  const canonical = grammarName(name);
  if (canonical === null || lowlight.registered(canonical)) return false;
  const grammar = await grammars[grammarPath(canonical)]();
  lowlight.register(canonical, grammar);
  const aliases = Object.entries(__HLJS_ALIASES__)
    .filter(([, target]) => target === canonical)
    .map(([alias]) => alias);
  if (aliases.length) lowlight.registerAlias(canonical, aliases);
  return true;
}

function languageOf(code: Element): string | null | false {
  const classes = Array.isArray(code.properties.className) ? code.properties.className.map(String) : [];
  if (classes.includes("no-highlight") || classes.includes("nohighlight")) return false;
  const named = classes.find((c) => c.startsWith("language-") || c.startsWith("lang-"));
  return named ? named.slice(named.indexOf("-") + 1).toLowerCase() : null;
}

/** rehype plugin: `<pre><code class="language-x">` highlighted when x is registered; every
 * fenced block gets the `hljs` class (the theme's colours), as rehype-highlight did. */
export function rehypeHighlightCode() {
  return (tree: Root) => {
    visit(tree, "element", (node: Element, _index, parent) => {
      if (node.tagName !== "code" || !parent || parent.type !== "element" || parent.tagName !== "pre") return;
      const language = languageOf(node);
      if (language === false || language === null) return;
      const classes = Array.isArray(node.properties.className) ? node.properties.className : [];
      if (!classes.includes("hljs")) node.properties.className = ["hljs", ...classes];
      if (!lowlight.registered(language)) return;
      const result = lowlight.highlight(language, toText(node, { whitespace: "pre" }));
      if (result.children.length > 0) node.children = result.children as Element["children"];
    });
  };
}
