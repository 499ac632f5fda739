// How long rendering a streaming answer takes, token by token, as the chat view renders it.
// `npm run bench` prints the figures; nothing here passes or fails on speed.
import { beforeAll, bench, describe } from "vitest";
import { createRoot } from "react-dom/client";
import { flushSync } from "react-dom";
import { Markdown } from "./Markdown";
import { prepareMarkdown } from "./features";

// A long answer of the kind that made streaming slow: prose, code to highlight, math.
const section = (i: number) =>
  [
    `## Step ${i}`,
    "",
    `Here the function is refactored so that \\(f(x) = x^${i}\\) stays cheap; it costs $5 and $10 less.`,
    "",
    "```python",
    `def step_${i}(items):`,
    "    total = 0",
    "    for item in items:",
    `        total += item * ${i}`,
    "    return total",
    "```",
    "",
  ].join("\n");
const answer = Array.from({ length: 24 }, (_, i) => section(i + 1)).join("\n");

/** Renders the answer growing by `chars` per render, as the view would receive it. */
function stream(streaming: boolean, chars: number) {
  const host = document.createElement("div");
  const root = createRoot(host);
  for (let end = chars; end < answer.length + chars; end += chars) {
    flushSync(() => root.render(<Markdown text={answer.slice(0, end)} streaming={streaming} />));
  }
  flushSync(() => root.render(<Markdown text={answer} />));
  root.unmount();
}

describe(`streaming a ${answer.length}-character answer`, () => {
  // Highlighting and math as in the chat (loaded before the first render there too).
  beforeAll(() => prepareMarkdown([answer]));
  const options = { iterations: 2, warmupIterations: 0, warmupTime: 0, time: 0 };
  bench("before: whole answer parsed on every 12-character delta", () => stream(false, 12), options);
  bench("finished blocks parsed once, every 12-character delta", () => stream(true, 12), options);
  bench("finished blocks parsed once, deltas joined per frame (~120 characters)", () => stream(true, 120), options);
});
