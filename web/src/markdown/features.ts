// The Markdown parser's plugins for what is loaded now (parts.ts loads math and highlighting).
// Each block of a text gets only the plugins it can use, so a part arriving re-renders the
// blocks that need it (the code blocks when the highlighter does) and none of the others.
import { useDeferredValue, useEffect, useSyncExternalStore } from "react";
import type { Options } from "react-markdown";
import remarkGfm from "remark-gfm";
import type { Element, Root } from "hast";
import { visit } from "unist-util-visit";
import { loadedParts, missingParts, prepareMarkdown, subscribeParts, type LoadedParts } from "./parts";

export { codeLanguages, needsMath, partsOf, prefetchChatParts, prepareChat, prepareMarkdown } from "./parts";

export type Plugins = { remarkPlugins: NonNullable<Options["remarkPlugins"]>; rehypePlugins: NonNullable<Options["rehypePlugins"]> };

/** Marks code that is not a block's (`inline-code`): it is styled as a chip, without the
 * backticks the typography plugin would draw around it. */
function rehypeInlineCode() {
  return (tree: Root) => {
    visit(tree, "element", (node: Element, _index, parent) => {
      if (node.tagName !== "code" || (parent?.type === "element" && parent.tagName === "pre")) return;
      const classes = Array.isArray(node.properties.className) ? node.properties.className : [];
      node.properties.className = [...classes, "inline-code"];
    });
  };
}

interface Variant {
  /** The loaded parts this variant was built from (only those it uses matter). */
  math: LoadedParts["math"];
  highlight: LoadedParts["highlight"];
  grammars: number;
  plugins: Plugins;
}
const variants = new Map<string, Variant>();

/** The plugins for a block that may contain math (`math`) and code (`code`), with what is
 * loaded: the same object until a part such a block uses changes, so a memoised block whose
 * parts did not change is not rendered again. */
export function pluginsFor(parts: LoadedParts, math: boolean, code: boolean): Plugins {
  const key = `${math ? "m" : ""}${code ? "c" : ""}`;
  const mathModule = math ? parts.math : null;
  const highlight = code ? parts.highlight : null;
  const grammars = code ? parts.grammars : 0;
  const cached = variants.get(key);
  if (cached && cached.math === mathModule && cached.highlight === highlight && cached.grammars === grammars) return cached.plugins;
  const plugins: Plugins = {
    remarkPlugins: mathModule ? [remarkGfm, mathModule.remarkMath] : [remarkGfm],
    // Math first: highlighting never sees the formulas' markup.
    rehypePlugins: [rehypeInlineCode, ...(mathModule ? mathModule.rehypeMath : []), ...(highlight ? [highlight.rehypeHighlightCode] : [])],
  };
  variants.set(key, { math: mathModule, highlight, grammars, plugins });
  return plugins;
}

/** Whether a block may hold a code block, anywhere (a fence in a list item is indented):
 * over-inclusive only costs a re-render when the highlighter arrives. */
export function mayHoldCode(block: string): boolean {
  return block.includes("```") || block.includes("~~~");
}

const withoutHighlight = new WeakMap<LoadedParts, LoadedParts>();

/** `parts` less the highlighter: what a text is first shown with. */
function firstShown(parts: LoadedParts): LoadedParts {
  if (!parts.highlight) return parts;
  let first = withoutHighlight.get(parts);
  if (!first) {
    first = { ...parts, highlight: null, grammars: 0 };
    withoutHighlight.set(parts, first);
  }
  return first;
}

/** What is loaded, for the parser's plugins (`pluginsFor`); asks for what `text` still needs.
 * A text is first shown with its math (typeset formulas take another size than their source,
 * so they must not follow) but without highlighting, which only colours code: that follows in
 * a background render, as does any part arriving later (a streaming answer that opens a
 * ```rust block, say), so neither holds up the first paint nor blocks input. */
export function useMarkdownParts(text: string): LoadedParts {
  const current = useSyncExternalStore(subscribeParts, loadedParts, loadedParts);
  const shown = useDeferredValue(current, firstShown(current));
  const incomplete = missingParts(text);
  useEffect(() => {
    if (incomplete) void prepareMarkdown([text]);
  }, [incomplete, text]);
  return shown;
}
