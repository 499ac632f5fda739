import { describe, expect, it } from "vitest";
import { renderToStaticMarkup } from "react-dom/server";
import { Markdown } from "./Markdown";
import { safeImageUrl, safeUrl } from "./safeUrl";

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
  it("loads images only over http(s)", () => {
    expect(safeImageUrl("https://example.com/a.png")).toBe("https://example.com/a.png");
    expect(safeImageUrl("data:image/png;base64,AAAA")).toBeNull();
    expect(safeImageUrl("mailto:a@b.c")).toBeNull();
  });
});

function render(text: string): HTMLElement {
  const host = document.createElement("div");
  host.innerHTML = renderToStaticMarkup(<Markdown text={text} />);
  return host;
}

describe("Markdown", () => {
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

  it("drops images with unsafe sources", () => {
    const html = render("![pic](data:image/svg+xml,<svg/onload=alert(1)>) ![ok](https://example.com/a.png)");
    const images = Array.from(html.querySelectorAll("img"));
    expect(images.map((i) => i.getAttribute("src"))).toEqual(["https://example.com/a.png"]);
  });

  it("renders code with highlighting and a copy button, tables, and math", () => {
    const html = render(
      "```rust\nfn main() { let x = 1; }\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nEuler: $e^{i\\pi}+1=0$\n\n$$\n\\int_0^1 x\\,dx\n$$",
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
