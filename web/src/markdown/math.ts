// Math, loaded on first use (see features.ts): `$$…$$` parsed by remark-math and typeset by
// KaTeX, with KaTeX's styles (and, through them, its woff2 fonts, each fetched by the browser
// only when a formula uses it).
import type { Pluggable } from "unified";
import remarkMathPlugin from "remark-math";
import rehypeKatex from "rehype-katex";
import "katex/dist/katex.min.css";

// Single dollars are currency ("$5 and $10"), not math: `$$…$$`, `\(…\)` and `\[…\]` are.
export const remarkMath: Pluggable = [remarkMathPlugin, { singleDollarTextMath: false }];
export const rehypeMath: Pluggable = [rehypeKatex, { throwOnError: false, strict: "ignore" }];
