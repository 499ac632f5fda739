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

// The faces nearly every formula uses (text, variables, big operators and delimiters): fetched
// before the first formula is shown, since KaTeX's faces block rendering until they arrive and
// then reflow the text around them. The rarer faces load when a formula needs them.
const commonFaces = ["1em KaTeX_Main", "italic 1em KaTeX_Math", "1em KaTeX_Size1", "1em KaTeX_Size2"];

export async function loadCommonFonts(): Promise<void> {
  if (typeof document === "undefined" || !("fonts" in document)) return;
  await Promise.all(commonFaces.map((face) => document.fonts.load(face).catch(() => [])));
}
