import { memo, useState, type ComponentProps, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import remarkMath from "remark-math";
import rehypeKatex from "rehype-katex";
import rehypeHighlight from "rehype-highlight";
import { safeImageUrl, safeUrl } from "./safeUrl";
import { useT } from "../i18n";
import { copyText } from "../ui/clipboard";

function textOf(node: ReactNode): string {
  if (node === null || node === undefined || typeof node === "boolean") return "";
  if (typeof node === "string" || typeof node === "number") return String(node);
  if (Array.isArray(node)) return node.map(textOf).join("");
  if (typeof node === "object" && "props" in node) {
    return textOf((node.props as { children?: ReactNode }).children);
  }
  return "";
}

function CodeBlock({ children, ...rest }: ComponentProps<"pre">) {
  const t = useT();
  const [copied, setCopied] = useState(false);
  const child = Array.isArray(children) ? children[0] : children;
  const className =
    child && typeof child === "object" && "props" in child ? String((child.props as { className?: string }).className ?? "") : "";
  const language = /language-([\w+#-]+)/.exec(className)?.[1] ?? "";
  const copy = async () => {
    if (await copyText(textOf(children))) {
      setCopied(true);
      window.setTimeout(() => setCopied(false), 1500);
    }
  };
  return (
    <div className="code-block not-prose my-3 overflow-hidden rounded-lg border border-gray-200 bg-gray-50">
      <div className="flex items-center justify-between border-b border-gray-200 bg-gray-100 px-3 py-1 text-xs text-gray-600">
        <span className="font-mono">{language || "text"}</span>
        <button
          type="button"
          onClick={copy}
          className="rounded px-2 py-0.5 hover:bg-gray-200 focus-visible:outline-2 focus-visible:outline-gray-900"
          aria-label={t("copyCode")}
        >
          {copied ? t("copied") : t("copy")}
        </button>
      </div>
      <pre {...rest} className="overflow-x-auto p-3 text-[13px] leading-relaxed">
        {children}
      </pre>
    </div>
  );
}

const components: Components = {
  pre: ({ node: _node, ...props }) => <CodeBlock {...props} />,
  a: ({ node: _node, href, children, ...props }) => {
    const url = href ? safeUrl(href) : null;
    if (!url) return <span>{children}</span>;
    return (
      <a {...props} href={url} target="_blank" rel="noopener noreferrer nofollow">
        {children}
      </a>
    );
  },
  img: ({ node: _node, src, alt }) => {
    const url = typeof src === "string" ? safeImageUrl(src) : null;
    if (!url) return <span>{alt}</span>;
    return <img src={url} alt={alt ?? ""} loading="lazy" referrerPolicy="no-referrer" className="max-w-full" />;
  },
  table: ({ node: _node, ...props }) => (
    <div className="overflow-x-auto">
      <table {...props} />
    </div>
  ),
};

// react-markdown already drops raw HTML into plain text; the URL check runs on every
// href/src it produces, and the components above check again where they render.
function urlTransform(url: string): string {
  return safeUrl(url) ?? "";
}

export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown prose prose-sm max-w-none break-words sm:prose-base prose-pre:my-0 prose-pre:bg-transparent prose-pre:p-0 prose-pre:text-gray-900">
      <ReactMarkdown
        remarkPlugins={[remarkGfm, [remarkMath, { singleDollarTextMath: true }]]}
        rehypePlugins={[
          [rehypeKatex, { throwOnError: false, strict: "ignore" }],
          [rehypeHighlight, { detect: false, ignoreMissing: true }],
        ]}
        components={components}
        urlTransform={urlTransform}
        skipHtml={false}
      >
        {text}
      </ReactMarkdown>
    </div>
  );
});
