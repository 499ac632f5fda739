/// <reference types="vite/client" />

/** Every alias highlight.js knows, to its language's name (`py` → `python`), from the
 * installed highlight.js at build time (vite.config.ts): the grammars themselves load on demand. */
declare const __HLJS_ALIASES__: Record<string, string>;
