import { createContext, memo, useCallback, useContext, useMemo, useState, type ComponentProps, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import { mayHoldCode, needsMath, pluginsFor, useMarkdownParts, type Plugins } from "./features";
import { modelImage, safeUrl } from "./safeUrl";
import { normalizeMathDelimiters, splitBlocks } from "./source";
import { useT } from "../i18n";
import { copyText } from "../ui/clipboard";
import { ImageIcon } from "../ui/icons";

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
        <button type="button" onClick={copy} className="rounded px-2 py-0.5 hover:bg-gray-200" aria-label={t("copyCode")}>
          {copied ? t("copied") : t("copy")}
        </button>
      </div>
      <pre {...rest} className="overflow-x-auto p-3 text-[13px] leading-relaxed">
        {children}
      </pre>
    </div>
  );
}

// The images of one answer the reader chose to load, kept while the answer re-renders.
const LoadedImages = createContext<{ loaded: ReadonlySet<string>; load: (url: string) => void }>({
  loaded: new Set(),
  load: () => {},
});

function ModelImage({ src, alt }: { src: string; alt: string }) {
  const t = useT();
  const { loaded, load } = useContext(LoadedImages);
  const image = modelImage(src);
  if (!image) return <span>{alt}</span>;
  if (image.kind === "link") {
    return (
      <a href={image.url} target="_blank" rel="noopener noreferrer nofollow" title={image.url}>
        {alt || t("image")} ({image.host})
      </a>
    );
  }
  if (loaded.has(image.url)) {
    return <img src={image.url} alt={alt} referrerPolicy="no-referrer" className="max-w-full" />;
  }
  return (
    <button
      type="button"
      onClick={() => load(image.url)}
      title={image.url}
      data-testid="image-placeholder"
      className="not-prose my-1 inline-flex max-w-full items-center gap-2 rounded-lg border border-dashed border-gray-300 bg-gray-50 px-3 py-2 text-left align-middle text-sm text-gray-700 hover:bg-gray-100"
    >
      <ImageIcon className="shrink-0 text-gray-500" />
      <span className="min-w-0">
        {alt && <span className="block truncate font-medium">{alt}</span>}
        <span className="block truncate text-xs text-gray-500">{t("loadImageFrom", { host: image.host })}</span>
      </span>
    </button>
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
  img: ({ node: _node, src, alt }) => (typeof src === "string" ? <ModelImage src={src} alt={alt ?? ""} /> : <span>{alt}</span>),
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

/** One parse of one piece of text; the same text is never parsed twice. */
const MarkdownBlock = memo(function MarkdownBlock({ text, plugins }: { text: string; plugins: Plugins }) {
  return (
    <ReactMarkdown
      remarkPlugins={plugins.remarkPlugins}
      rehypePlugins={plugins.rehypePlugins}
      components={components}
      urlTransform={urlTransform}
      skipHtml={false}
    >
      {text}
    </ReactMarkdown>
  );
});

/** A link reference or footnote definition (`[x]: https://…`, `[^1]: …`): a text with one is
 * parsed whole once finished, so references in other blocks resolve. */
function hasDefinitions(text: string): boolean {
  return /^ {0,3}\[[^\]\n]+\]:/m.test(text);
}

/** Model output as Markdown (math and code highlighting as soon as their chunks are loaded:
 * `prepareMarkdown` first, to show a text complete at once). While an answer streams, its
 * finished blocks are parsed (and highlighted, and typeset) once and only the growing last
 * block again, instead of the whole answer on every token. A part arriving re-renders only the
 * blocks that can use it. A finished answer stays in blocks too (each block its own unit of
 * work, so rendering a long chat can yield between blocks), unless it defines link references
 * or footnotes: then it is parsed whole, so references across blocks resolve. */
export const Markdown = memo(function Markdown({ text, streaming = false }: { text: string; streaming?: boolean }) {
  const source = useMemo(() => normalizeMathDelimiters(text), [text]);
  const blocks = useMemo(() => (streaming || !hasDefinitions(source) ? splitBlocks(source) : [source]), [source, streaming]);
  const parts = useMarkdownParts(source);
  const [loaded, setLoaded] = useState<ReadonlySet<string>>(() => new Set());
  const load = useCallback((url: string) => setLoaded((set) => new Set(set).add(url)), []);
  const images = useMemo(() => ({ loaded, load }), [loaded, load]);
  return (
    <div className="markdown prose prose-sm max-w-none break-words sm:prose-base prose-pre:my-0 prose-pre:bg-transparent prose-pre:p-0 prose-pre:text-gray-900">
      <LoadedImages.Provider value={images}>
        {blocks.map((block, i) => (
          <MarkdownBlock key={i} text={block} plugins={pluginsFor(parts, needsMath(block), mayHoldCode(block))} />
        ))}
      </LoadedImages.Provider>
    </div>
  );
});
