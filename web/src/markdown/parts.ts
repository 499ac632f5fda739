// What a text needs beyond plain Markdown: math (remark-math, KaTeX's MathML output) and code
// highlighting (lowlight, and each language's grammar), each a chunk of its own loaded on
// first use, so a chat without math never downloads KaTeX and a Python answer fetches the
// Python grammar alone. Loads once; renderers subscribe and re-render when a part arrives.
//
// This module is small and free of the Markdown parser on purpose: it is in the entry chunk,
// so a page opened on a chat starts fetching the chat's parts while the app's own chunk is
// still on its way (see app/preload.ts), not after it.
import type * as MathModule from "./math";
import type * as HighlightModule from "./highlight";
import { rememberedParts, rememberParts } from "./partsHint";
import { hasDollarMath } from "./source";

/** What is loaded now; a new object whenever anything arrives. */
export interface LoadedParts {
  math: typeof MathModule | null;
  highlight: typeof HighlightModule | null;
  /** How many grammars are registered: highlighted output changes when one arrives. */
  grammars: number;
}

let loaded: LoadedParts = { math: null, highlight: null, grammars: 0 };
let mathLoading: Promise<void> | null = null;
let highlightLoading: Promise<typeof HighlightModule> | null = null;
const languagesLoading = new Map<string, Promise<void>>();
const listeners = new Set<() => void>();

function arrived(change: Partial<LoadedParts>) {
  loaded = { ...loaded, ...change };
  for (const listener of listeners) listener();
}

export function loadedParts(): LoadedParts {
  return loaded;
}

export function subscribeParts(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
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
export function needsHighlight(text: string): boolean {
  return /^ {0,3}(?:`{3,}|~{3,})/m.test(text);
}

function loadMath(): Promise<void> {
  mathLoading ??= import("./math").then((module) => arrived({ math: module }));
  return mathLoading;
}

function loadHighlight(): Promise<typeof HighlightModule> {
  highlightLoading ??= import("./highlight").then((module) => {
    arrived({ highlight: module });
    return module;
  });
  return highlightLoading;
}

function loadLanguage(name: string): Promise<void> {
  let loading = languagesLoading.get(name);
  if (!loading) {
    loading = loadHighlight().then(async (module) => {
      if (await module.registerLanguage(name)) arrived({ grammars: loaded.grammars + 1 });
    });
    languagesLoading.set(name, loading);
  }
  return loading;
}

/** Whether `text` needs a part that is neither loaded nor on its way. */
export function missingParts(text: string): boolean {
  if (needsMath(text) && !loaded.math) return true;
  if (needsHighlight(text) && !loaded.highlight) return true;
  return codeLanguages(text).some((name) => !loaded.highlight?.hasLanguage(name) && !languagesLoading.has(name));
}

const settle = (wait: Promise<unknown>) =>
  wait.then(
    () => {},
    (err: unknown) => console.warn("a Markdown part failed to load", err),
  );

/** Loads everything the texts need; resolves when it is there (a part that fails to load is
 * left out: the text then shows without it, never not at all). */
export async function prepareMarkdown(texts: Iterable<string>): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const text of texts) {
    if (needsMath(text)) waits.push(loadMath());
    if (needsHighlight(text)) waits.push(loadHighlight());
    for (const name of codeLanguages(text)) waits.push(loadLanguage(name));
  }
  await Promise.all(waits.map(settle));
}

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

/** Loads what the chat's texts need and remembers it for the chat's next visit. Resolves once
 * what changes the texts' layout is there (math, typeset to a different size than its source);
 * highlighting only colours code, so it is not waited for: it follows as it arrives. */
export function prepareChat(chat: string, texts: string[]): Promise<void> {
  rememberParts(chat, partsOf(texts));
  void prepareMarkdown(texts);
  return texts.some(needsMath) ? settle(loadMath()) : Promise.resolve();
}
