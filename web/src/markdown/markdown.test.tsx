import { beforeAll, describe, expect, it } from "vitest";
import { act } from "react";
import { createRoot } from "react-dom/client";
import { fireEvent, render as mount } from "@testing-library/react";
import { Markdown } from "./Markdown";
import { modelImage, safeImageUrl, safeUrl } from "./safeUrl";
import { normalizeMathDelimiters, splitBlocks } from "./source";
import { codeLanguages, mayHoldCode, needsMath, pluginsFor, prepareMarkdown } from "./features";
import { loadedParts } from "./parts";
import { renderToStaticMarkup } from "react-dom/server";

describe("safeUrl", () => {
  it("keeps web, mail and relative links", () => {
    for (const url of [
      "https://example.com/a?b=c#d",
      "http://x.org",
      "mailto:a@b.c",
      "/relative",
      "#frag",
      "page.html",
      "//cdn.example.com/x",
    ]) {
      expect(safeUrl(url)).toBe(url);
    }
  });
  it("drops script and data schemes however they are disguised", () => {
    for (const url of [
      "javascript:alert(1)",
      "JavaScript:alert(1)",
      " javascript:alert(1)",
      "java\tscript:alert(1)",
      "java\nscript:alert(1)",
      "\u0000javascript:alert(1)",
      "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
      "DATA:image/svg+xml,<svg onload=alert(1)>",
      "vbscript:msgbox(1)",
      "file:///etc/passwd",
      "",
    ]) {
      expect(safeUrl(url), url).toBeNull();
    }
  });
  it("loads the user's own images only over https, as the CSP allows", () => {
    expect(safeImageUrl("https://example.com/a.png")).toBe("https://example.com/a.png");
    expect(safeImageUrl("http://example.com/a.png")).toBeNull();
    expect(safeImageUrl("data:image/png;base64,AAAA")).toBeNull();
    expect(safeImageUrl("mailto:a@b.c")).toBeNull();
  });
  it("never loads an image from model output by itself", () => {
    expect(modelImage("https://cdn.example.com/a.png?leak=secret")).toEqual({
      kind: "click-to-load",
      url: "https://cdn.example.com/a.png?leak=secret",
      host: "cdn.example.com",
    });
    expect(modelImage("HTTP://plain.example.com:8080/a.png")).toEqual({
      kind: "link",
      url: "HTTP://plain.example.com:8080/a.png",
      host: "plain.example.com:8080",
    });
    for (const src of [
      "data:image/png;base64,AAAA",
      "blob:https://x/1",
      "javascript:alert(1)",
      "/relative.png",
      "//cdn.example.com/x.png",
      "",
    ]) {
      expect(modelImage(src), src).toBeNull();
    }
  });
});

describe("parts loaded on first use", () => {
  it("knows which parts a text needs", () => {
    expect(needsMath("costs $5 and $10")).toBe(false);
    expect(needsMath("where $x^2 + y^2 = r^2$ holds")).toBe(true);
    for (const text of ["$$x$$", "a \\(x\\) b", "\\[ x \\]"]) expect(needsMath(text), text).toBe(true);
    expect(codeLanguages("```Rust\nfn\n```\n\n  ~~~ python {.x}\n~~~\n```\nplain\n```\n`inline`")).toEqual(["rust", "python"]);
    expect(codeLanguages("no code")).toEqual([]);
  });

  // Runs before the other Markdown tests load anything (the file's tests run in order).
  it("shows a text before its parts arrive, then highlights and typesets it", async () => {
    const text = "```haskell\nmain = putStrLn 1\n```\n\n$$x^2$$";
    const before = render(text);
    expect(before.querySelector("pre code")?.textContent).toBe("main = putStrLn 1\n");
    expect(before.querySelector("pre code span")).toBeNull();
    expect(before.querySelector(".katex")).toBeNull();
    expect(before.textContent).toContain("$$x^2$$");
    await prepareMarkdown([text]);
    const after = render(text);
    expect(after.querySelector("pre code.hljs")).not.toBeNull();
    expect(after.querySelector("pre code span[class^=hljs-]")).not.toBeNull();
    expect(after.querySelector(".katex")).not.toBeNull();
    // An alias loads its language's grammar; an unknown language stays plain text.
    await prepareMarkdown(["```py\nimport os\n```\n\n```nosuchlanguage\nx = 1\n```"]);
    const aliased = render("```py\nimport os\n```\n\n```nosuchlanguage\nx = 1\n```");
    const [py, unknown] = Array.from(aliased.querySelectorAll("pre code"));
    expect(py.querySelector(".hljs-keyword")?.textContent).toBe("import");
    expect(unknown.querySelector("span")).toBeNull();
    expect(unknown.textContent).toBe("x = 1\n");
  });
});

// React's act() flushes every render it started, the background ones too.
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

describe("a text shown before its code is highlighted", () => {
  beforeAll(() => prepareMarkdown(["$$x$$", "```python\n```"]));

  it("is first rendered with its math typeset and its code plain, in the box it keeps", () => {
    const text = "Where \\(x^2\\) holds:\n\n```python\nimport os\n```";
    // The first render (as the server renders it): math in, highlighting not yet.
    const first = document.createElement("div");
    first.innerHTML = renderToStaticMarkup(<Markdown text={text} />);
    expect(first.querySelector(".katex math")).not.toBeNull();
    expect(first.querySelector("pre code")?.textContent).toBe("import os\n");
    expect(first.querySelector("pre code span")).toBeNull();
    // Then, in the background, the colours.
    const shown = render(text);
    expect(shown.querySelector("pre code.hljs .hljs-keyword")?.textContent).toBe("import");
    expect(shown.querySelector(".katex math")).not.toBeNull();
  });

  it("re-renders only the blocks that can use a part that arrived", () => {
    const before = loadedParts();
    const later = { ...before, grammars: before.grammars + 1 };
    // A prose block keeps its plugins (its memoised render is skipped); a code block gets new ones.
    expect(pluginsFor(later, true, false)).toBe(pluginsFor(before, true, false));
    expect(pluginsFor(later, false, false)).toBe(pluginsFor(before, false, false));
    expect(pluginsFor(later, false, true)).not.toBe(pluginsFor(before, false, true));
    expect(mayHoldCode("text\n\n1. item\n\n    ```rust\n    fn x() {}\n    ```")).toBe(true);
    expect(mayHoldCode("just `inline` code")).toBe(false);
  });
});

/** The text as the page shows it once every render is done (highlighting comes in a
 * background render after the first one). */
function render(text: string, streaming = false): HTMLElement {
  const host = document.createElement("div");
  const root = createRoot(host);
  act(() => root.render(<Markdown text={text} streaming={streaming} />));
  const shown = host.cloneNode(true) as HTMLElement;
  act(() => root.unmount());
  return shown;
}

describe("Markdown", () => {
  // What the chat view does before it shows a chat: every part these texts need, loaded.
  beforeAll(() => prepareMarkdown(["$$x$$", "```rust\n```", "```python\n```"]));

  it("never renders raw HTML from the text", () => {
    const html = render('Hi <img src=x onerror="alert(1)"> <script>alert(2)</script>\n\n<div onclick="x()">block</div>');
    expect(html.querySelector("img")).toBeNull();
    expect(html.querySelector("script")).toBeNull();
    expect(html.querySelector("[onclick]")).toBeNull();
    expect(html.querySelector("[onerror]")).toBeNull();
    // Shown as text instead, so nothing the model wrote disappears.
    expect(html.textContent).toContain("<script>alert(2)</script>");
  });

  it("drops javascript: and data: links but keeps their text", () => {
    const html = render("[click](javascript:alert(1)) [data](data:text/html,<b>x</b>) [ok](https://example.com) <javascript:alert(3)>");
    const links = Array.from(html.querySelectorAll("a"));
    expect(links.map((a) => a.getAttribute("href"))).toEqual(["https://example.com"]);
    expect(links[0].getAttribute("rel")).toContain("noopener");
    expect(html.textContent).toContain("click");
    expect(html.textContent).toContain("data");
    for (const el of Array.from(html.querySelectorAll("[href], [src]"))) {
      expect(el.getAttribute("href") ?? el.getAttribute("src")).not.toMatch(/^(javascript|data):/i);
    }
  });

  it("drops links hidden behind entities, references and raw anchors", () => {
    const html = render(
      '[a](javascript&#58;alert(1)) [b](&#106;avascript:alert(1)) [c][ref] <a href="javascript:alert(2)">d</a>\n\n[ref]: javascript:alert(3)',
    );
    expect(html.querySelectorAll("a")).toHaveLength(0);
    expect(html.textContent).toContain("a b c");
  });

  it("drops images with unsafe sources and keeps their alt text", () => {
    const html = render("![pic](data:image/svg+xml,<svg/onload=alert(1)>) ![script](javascript:alert(1))");
    expect(html.querySelectorAll("img, button")).toHaveLength(0);
    expect(html.textContent).toContain("pic");
    expect(html.textContent).toContain("script");
  });

  it("loads a remote image only when the reader clicks its placeholder, which names the host", () => {
    const { container, getByRole } = mount(<Markdown text={"See ![the chart](https://evil.example/c.png?q=secret) here"} />);
    expect(container.querySelector("img")).toBeNull();
    const placeholder = getByRole("button", { name: /Load image from evil\.example/ });
    expect(placeholder.textContent).toContain("the chart");
    expect(placeholder.getAttribute("title")).toBe("https://evil.example/c.png?q=secret");
    fireEvent.click(placeholder);
    const img = container.querySelector("img");
    expect(img?.getAttribute("src")).toBe("https://evil.example/c.png?q=secret");
    expect(img?.getAttribute("referrerpolicy")).toBe("no-referrer");
    expect(img?.getAttribute("alt")).toBe("the chart");
  });

  it("keeps a loaded image when the answer finishes streaming", () => {
    const text = "First block\n\n![pic](https://img.example/p.png)\n\nmore";
    const view = mount(<Markdown text={text} streaming />);
    fireEvent.click(view.getByRole("button", { name: /img\.example/ }));
    view.rerender(<Markdown text={text + " text"} streaming={false} />);
    expect(view.container.querySelector("img")?.getAttribute("src")).toBe("https://img.example/p.png");
  });

  it("offers http images (which the CSP would block) as a link only", () => {
    const html = render("![old](http://plain.example/a.png)");
    expect(html.querySelector("img")).toBeNull();
    const link = html.querySelector("a");
    expect(link?.getAttribute("href")).toBe("http://plain.example/a.png");
    expect(link?.textContent).toBe("old (plain.example)");
  });

  it("renders code with highlighting and a copy button, tables, and math", () => {
    const html = render(
      "```rust\nfn main() { let x = 1; }\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nEuler: $$e^{i\\pi}+1=0$$\n\n$$\n\\int_0^1 x\\,dx\n$$",
    );
    const code = html.querySelector("pre code");
    expect(code?.className).toContain("language-rust");
    expect(code?.querySelector(".hljs-keyword")?.textContent).toBe("fn");
    expect(html.querySelector(".code-block button")?.textContent).toBe("Copy");
    expect(html.querySelectorAll("table td")).toHaveLength(2);
    expect(html.querySelectorAll(".katex").length).toBeGreaterThanOrEqual(2);
    expect(html.querySelector(".katex-display")).not.toBeNull();
  });
});

describe("math", () => {
  beforeAll(() => prepareMarkdown(["$$x$$"]));

  it("leaves currency as text", () => {
    const html = render("It costs $5 and $10, or $ 20.");
    expect(html.querySelector(".katex")).toBeNull();
    expect(html.textContent).toBe("It costs $5 and $10, or $ 20.");
  });

  it("renders \\(…\\) and $$…$$ inline, \\[…\\] and $$ blocks as display math", () => {
    const inline = render("Area \\(\\pi r^2\\) and $$x^2$$.");
    expect(inline.querySelectorAll(".katex")).toHaveLength(2);
    expect(inline.querySelector(".katex-display")).toBeNull();
    expect(inline.querySelector("annotation")?.textContent).toBe("\\pi r^2");
    // MathML only: the browser typesets it; no KaTeX HTML (nor its styles and fonts).
    expect(inline.querySelectorAll(".katex > math")).toHaveLength(2);
    expect(inline.querySelector(".katex-html")).toBeNull();

    const display = render("Sum:\n\n\\[\n\\sum_{i=1}^n i\n\\]\n\nand\n\n\\[ e = mc^2 \\]");
    expect(display.querySelectorAll(".katex-display")).toHaveLength(2);
    expect(display.querySelectorAll('.katex-display > math[display="block"]')).toHaveLength(2);
  });

  it("rewrites LaTeX delimiters outside code only", () => {
    expect(normalizeMathDelimiters("a \\(x\\) b")).toBe("a $$x$$ b");
    expect(normalizeMathDelimiters("`\\(x\\)` and\n```\n\\[y\\]\n```\n")).toBe("`\\(x\\)` and\n```\n\\[y\\]\n```\n");
    expect(normalizeMathDelimiters("- item\n  \\[ x \\]\n")).toBe("- item\n  $$\n  x\n  $$\n");
    // An escaped backslash is no delimiter; a paragraph break ends inline math.
    expect(normalizeMathDelimiters("\\\\(not math)")).toBe("\\\\(not math)");
    expect(normalizeMathDelimiters("\\( a\n\nb \\)")).toBe("\\( a\n\nb \\)");
  });

  it("renders $…$ inline math but leaves prices alone", () => {
    expect(normalizeMathDelimiters("so $E = mc^2$, and $\\alpha$.")).toBe("so $$E = mc^2$$, and $$\\alpha$$.");
    for (const prices of ["costs $5 and $10", "$5-$10 a month", "between $ 3 and 4 $", "US$20, or $30.", "a \\$5 fee and $6"]) {
      expect(normalizeMathDelimiters(prices), prices).toBe(prices);
    }
    // Not in code, not across lines, and $$ stays as it is.
    expect(normalizeMathDelimiters("`$x$` and\n```\n$y$\n```\n")).toBe("`$x$` and\n```\n$y$\n```\n");
    expect(normalizeMathDelimiters("$a\nb$")).toBe("$a\nb$");
    expect(normalizeMathDelimiters("$$x$$ and $$\ny\n$$")).toBe("$$x$$ and $$\ny\n$$");
    const rendered = render("Qwen says $x_1 + x_2$ costs $5 and $10.");
    expect(rendered.querySelectorAll(".katex")).toHaveLength(1);
    expect(rendered.querySelector("annotation")?.textContent).toBe("x_1 + x_2");
    expect(rendered.textContent).toContain("costs $5 and $10.");
  });

  it("shows inline code without backticks", () => {
    const code = render("Use `let x` here.").querySelector("p code");
    expect(code?.textContent).toBe("let x");
    expect(code?.classList.contains("inline-code")).toBe(true);
  });
});

describe("streaming blocks", () => {
  beforeAll(() => prepareMarkdown(["$$x$$", "```python\n```"]));

  const answer = [
    "# Title",
    "",
    "A paragraph with `code`.",
    "",
    "```python",
    "def f():",
    "",
    "    return 1",
    "```",
    "",
    "- item one",
    "",
    "  continued item",
    "- item two",
    "",
    "$$",
    "x",
    "",
    "y",
    "$$",
    "",
    "| a | b |",
    "|---|---|",
    "| 1 | 2 |",
    "",
    "Last words.",
  ].join("\n");

  it("cuts only between top-level blocks", () => {
    expect(splitBlocks(answer)).toEqual([
      "# Title\n\n",
      "A paragraph with `code`.\n\n",
      "```python\ndef f():\n\n    return 1\n```\n\n",
      "- item one\n\n  continued item\n- item two\n\n",
      "$$\nx\n\ny\n$$\n\n",
      "| a | b |\n|---|---|\n| 1 | 2 |\n\n",
      "Last words.",
    ]);
    expect(splitBlocks(answer).join("")).toBe(answer);
  });

  it("never changes a finished block as more text arrives", () => {
    const final = splitBlocks(answer);
    for (let end = 0; end <= answer.length; end++) {
      const blocks = splitBlocks(answer.slice(0, end));
      // Every block but the growing last one is already final.
      expect(blocks.slice(0, -1), answer.slice(0, end)).toEqual(final.slice(0, blocks.length - 1));
    }
  });

  it("renders an answer cut into blocks as the answer parsed whole", () => {
    // Only the newlines between top-level elements differ, which HTML does not show.
    const markup = (text: string, streaming: boolean) => render(text, streaming).innerHTML.replace(/>\s+</g, "><");
    // A definition (which renders nothing) makes a finished answer parse whole.
    const whole = markup(`${answer}\n\n[unused]: https://example.com/`, false);
    expect(markup(answer, true)).toBe(whole);
    expect(markup(answer, false)).toBe(whole);
  });

  it("resolves a reference defined in another block once the answer is finished", () => {
    const text = "See [the docs][docs].\n\nMore text.\n\n[docs]: https://example.com/docs";
    expect(render(text).querySelector("a")?.getAttribute("href")).toBe("https://example.com/docs");
  });
});
