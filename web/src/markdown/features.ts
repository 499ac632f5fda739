// What a text needs beyond plain Markdown: math (remark-math, KaTeX's MathML output)
// and code highlighting (lowlight, and each language's grammar), each a chunk of its own
// loaded on first use, so a chat without math never downloads KaTeX and a Python answer
// fetches the Python grammar alone. Loads once; the renderers subscribe and re-render when a
// part arrives.
import { useEffect, useSyncExternalStore } from "react";
import type { Options } from "react-markdown";
import remarkGfm from "remark-gfm";
import type { Element, Root } from "hast";
import { visit } from "unist-util-visit";
import type * as MathModule from "./math";
import type * as HighlightModule from "./highlight";
import { rememberedParts, rememberParts } from "./partsHint";
import { hasDollarMath } from "./source";

type Plugins = { remarkPlugins: NonNullable<Options["remarkPlugins"]>; rehypePlugins: NonNullable<Options["rehypePlugins"]> };

let math: typeof MathModule | null = null;
let highlight: typeof HighlightModule | null = null;
let mathLoading: Promise<void> | null = null;
let highlightLoading: Promise<typeof HighlightModule> | null = null;
const languagesLoading = new Map<string, Promise<void>>();
const listeners = new Set<() => void>();
let plugins: Plugins = build();

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

function build(): Plugins {
  return {
    remarkPlugins: math ? [remarkGfm, math.remarkMath] : [remarkGfm],
    // Math first: highlighting never sees the formulas' markup.
    rehypePlugins: [rehypeInlineCode, ...(math ? math.rehypeMath : []), ...(highlight ? [highlight.rehypeHighlightCode] : [])],
  };
}

function changed() {
  plugins = build();
  for (const listener of listeners) listener();
}

/** `$$…$$`, `\(…\)`, `\[…\]` or `$…$` somewhere (over-inclusive is fine: it only loads KaTeX). */
export function needsMath(text: string): boolean {
  return /\$\$|\\\(|\\\[/.test(text) || hasDollarMath(text);
}

/** The languages named by the text's code fences, lower-cased (```rust, ~~~ python {…}). */
export function codeLanguages(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(/^ {0,3}(?:`{3,}|~{3,})[ \t]*([^\s`{]+)/gm)) names.add(match[1].toLowerCase());
  return [...names];
}

/** A text with a code fence gets the highlighter even without a language (it marks the block). */
function needsHighlight(text: string): boolean {
  return /^ {0,3}(?:`{3,}|~{3,})/m.test(text);
}

function loadMath(): Promise<void> {
  mathLoading ??= import("./math").then((module) => {
    math = module;
    changed();
  });
  return mathLoading;
}

function loadHighlight(): Promise<typeof HighlightModule> {
  highlightLoading ??= import("./highlight").then((module) => {
    highlight = module;
    changed();
    return module;
  });
  return highlightLoading;
}

function loadLanguage(name: string): Promise<void> {
  let loading = languagesLoading.get(name);
  if (!loading) {
    loading = loadHighlight().then(async (module) => {
      if (await module.registerLanguage(name)) changed();
    });
    languagesLoading.set(name, loading);
  }
  return loading;
}

function missing(text: string): boolean {
  if (needsMath(text) && !math) return true;
  if (needsHighlight(text) && !highlight) return true;
  return codeLanguages(text).some((name) => !highlight?.hasLanguage(name) && !languagesLoading.has(name));
}

/** Loads everything the texts need; resolves when it is there (a part that fails to load is
 * left out: the text then shows without it, never not at all). */
export async function prepareMarkdown(texts: Iterable<string>): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const text of texts) {
    if (needsMath(text)) waits.push(loadMath());
    if (needsHighlight(text)) waits.push(loadHighlight().then(() => {}));
    for (const name of codeLanguages(text)) waits.push(loadLanguage(name));
  }
  await Promise.all(waits.map((wait) => wait.catch((err: unknown) => console.warn("a Markdown part failed to load", err))));
}

const currentPlugins = () => plugins;

/** What the texts need, as remembered for the next visit. */
export function partsOf(texts: Iterable<string>): { math: boolean; languages: string[] } {
  let math = false;
  const languages = new Set<string>();
  for (const text of texts) {
    math ||= needsMath(text);
    for (const name of codeLanguages(text)) languages.add(name);
  }
  return { math, languages: [...languages] };
}

/** Starts loading what `chat` needed when last shown (see partsHint.ts). */
export function prefetchChatParts(chat: string): void {
  const parts = rememberedParts(chat);
  if (parts) void prepareMarkdown([...(parts.math ? ["$$"] : []), ...parts.languages.map((name) => "```" + name + "\n")]);
}

/** Loads what the chat's texts need and remembers it for the chat's next visit. */
export function prepareChat(chat: string, texts: string[]): Promise<void> {
  rememberParts(chat, partsOf(texts));
  return prepareMarkdown(texts);
}

function subscribe(listener: () => void) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The parser's plugins for what is loaded now; asks for what `text` still needs and
 * re-renders when it arrives (a streaming answer that opens a ```rust block, say). */
export function useMarkdownPlugins(text: string): Plugins {
  const current = useSyncExternalStore(subscribe, currentPlugins, currentPlugins);
  const incomplete = missing(text);
  useEffect(() => {
    if (incomplete) void prepareMarkdown([text]);
  }, [incomplete, text]);
  return current;
}
