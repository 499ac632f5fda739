// Math, loaded on first use (see features.ts): `$$…$$` parsed by remark-math and typeset by
// KaTeX as MathML only, which the browser lays out itself (MathML Core: Chromium 109+,
// Firefox, Safari) with the system's math font. KaTeX's HTML output was several times the DOM,
// needed its 23 KB stylesheet and its own web fonts (fetched before a formula could show), and
// was most of the chat page's style and layout work; MathML needs none of them.
import type { Element, Root } from "hast";
import type { Pluggable } from "unified";
import { visit } from "unist-util-visit";
import remarkMathPlugin from "remark-math";
import rehypeKatex from "rehype-katex";

// Single dollars are currency ("$5 and $10"), not math: `$$…$$`, `\(…\)` and `\[…\]` are.
export const remarkMath: Pluggable = [remarkMathPlugin, { singleDollarTextMath: false }];
const rehypeKatexMathml: Pluggable = [rehypeKatex, { throwOnError: false, strict: "ignore", output: "mathml" }];

/** KaTeX's MathML output marks display math only by `<math display="block">`; its `.katex`
 * span gets the `katex-display` class its HTML output had (the styles and tests key on it). */
function rehypeDisplayClass() {
  return (tree: Root) => {
    visit(tree, "element", (node: Element) => {
      if (node.tagName !== "span") return;
      const classes = Array.isArray(node.properties.className) ? node.properties.className : [];
      if (!classes.includes("katex") || classes.includes("katex-display")) return;
      const math = node.children.find((child): child is Element => child.type === "element" && child.tagName === "math");
      if (math?.properties.display === "block") node.properties.className = [...classes, "katex-display"];
    });
  };
}

export const rehypeMath: Pluggable[] = [rehypeKatexMathml, rehypeDisplayClass];
