// Model output prepared for the Markdown parser: LaTeX delimiters the parser does not know
// rewritten to its own, and a streaming answer cut into blocks that no later text can change.

/** The opening of a fenced code block (``` or ~~~, at most 3 spaces in), or null. */
function fenceOpening(line: string): { char: string; length: number } | null {
  const match = /^ {0,3}(`{3,}|~{3,})/.exec(line);
  if (!match) return null;
  // A backtick fence's info string cannot contain a backtick (that is inline code).
  if (match[1][0] === "`" && line.slice(match[0].length).includes("`")) return null;
  return { char: match[1][0], length: match[1].length };
}

function closesFence(line: string, fence: { char: string; length: number }): boolean {
  const match = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
  return match !== null && match[1][0] === fence.char && match[1].length >= fence.length;
}

/** A line that opens or closes a `$$` display-math block (not `$$x$$`, which is inline). */
function isMathFence(line: string): boolean {
  const trimmed = line.trim();
  return trimmed.startsWith("$$") && !(trimmed.length > 4 && trimmed.endsWith("$$"));
}

/** Splits text into alternating prose and code: fenced blocks and inline code spans are kept
 * apart so nothing inside them is rewritten. */
function splitCode(text: string): { code: boolean; text: string }[] {
  const parts: { code: boolean; text: string }[] = [];
  const push = (code: boolean, piece: string) => {
    if (piece === "") return;
    const last = parts[parts.length - 1];
    if (last && last.code === code) last.text += piece;
    else parts.push({ code, text: piece });
  };
  const lines = text.split(/(?<=\n)/);
  let fence: { char: string; length: number } | null = null;
  let prose = "";
  const flushProse = () => {
    for (const part of splitInlineCode(prose)) push(part.code, part.text);
    prose = "";
  };
  for (const line of lines) {
    if (fence) {
      push(true, line);
      if (closesFence(line.replace(/\n$/, ""), fence)) fence = null;
      continue;
    }
    const opening = fenceOpening(line);
    if (opening) {
      flushProse();
      fence = opening;
      push(true, line);
    } else {
      prose += line;
    }
  }
  flushProse();
  return parts;
}

/** Inline code spans: a run of n backticks up to the next run of exactly n. */
function splitInlineCode(text: string): { code: boolean; text: string }[] {
  const parts: { code: boolean; text: string }[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    if (text[i] !== "`") {
      i++;
      continue;
    }
    let run = i;
    while (run < text.length && text[run] === "`") run++;
    const ticks = run - i;
    let close = -1;
    for (let j = run; j < text.length;) {
      if (text[j] !== "`") {
        j++;
        continue;
      }
      let end = j;
      while (end < text.length && text[end] === "`") end++;
      if (end - j === ticks) {
        close = end;
        break;
      }
      j = end;
    }
    if (close < 0) {
      i = run;
      continue;
    }
    if (i > start) parts.push({ code: false, text: text.slice(start, i) });
    parts.push({ code: true, text: text.slice(i, close) });
    start = close;
    i = close;
  }
  if (start < text.length) parts.push({ code: false, text: text.slice(start) });
  return parts;
}

/** `$…$` inline math as DeepSeek and Qwen write it, by Pandoc's rule: the opening `$` is
 * followed by a non-space, the closing one follows a non-space and is not followed by a digit,
 * both on one line. So "$5 and $10" (a space before the second `$`) and "$5-$10" (a digit after
 * it) stay prices; an escaped `\$` is never a delimiter, nor is either `$` of `$$`. */
const INLINE_DOLLAR_MATH = /(?<![\\$])\$(?![\s$])((?:[^$\n\\]|\\[^\n])+?)(?<![\s\\])\$(?![\d$])/g;

/** Whether the text has `$…$` inline math (outside code or not: over-inclusive only loads KaTeX). */
export function hasDollarMath(text: string): boolean {
  INLINE_DOLLAR_MATH.lastIndex = 0;
  return text.includes("$") && INLINE_DOLLAR_MATH.test(text);
}

/** `\[…\]`, `\(…\)` (as ChatGPT-style models write LaTeX) and `$…$` in remark-math's `$$`
 * syntax: display math when `\[` opens its line and `\]` ends one, inline math otherwise.
 * Code is left alone. */
export function normalizeMathDelimiters(text: string): string {
  if (!text.includes("\\(") && !text.includes("\\[") && !text.includes("$")) return text;
  return splitCode(text)
    .map((part) => (part.code ? part.text : rewriteMath(part.text)))
    .join("");
}

function rewriteMath(prose: string): string {
  const display = prose.replace(/(?<!\\)\\\[([\s\S]+?)(?<!\\)\\\]/g, (match, inner: string, offset: number) => {
    const before = prose.slice(prose.lastIndexOf("\n", offset - 1) + 1, offset);
    const afterEnd = offset + match.length;
    const lineEnd = prose.indexOf("\n", afterEnd);
    const after = prose.slice(afterEnd, lineEnd < 0 ? prose.length : lineEnd);
    if (before.trim() === "" && after.trim() === "") {
      // Kept at the line's indentation, so display math inside a list item stays in it.
      return `$$\n${before}${inner.trim()}\n${before}$$`;
    }
    return `$$${inner}$$`;
  });
  // Inline math does not run across a blank line (a paragraph break).
  const inline = display.replace(/(?<!\\)\\\(((?:(?!\n\s*\n)[\s\S])+?)(?<!\\)\\\)/g, (_match, inner: string) => `$$${inner}$$`);
  return inline.replace(INLINE_DOLLAR_MATH, (_match, inner: string) => `$$${inner}$$`);
}

/** Cuts a streaming answer at blank lines between top-level blocks (never inside a code
 * fence or a `$$` block, nor before an indented continuation). A cut depends only on the text
 * before it and the first character after it, so every block but the last stays the same as
 * more text arrives and is parsed once. */
export function splitBlocks(text: string): string[] {
  const blocks: string[] = [];
  const lines = text.split(/(?<=\n)/);
  let fence: { char: string; length: number } | null = null;
  let math = false;
  let previousBlank = false;
  let start = 0;
  let offset = 0;
  for (const raw of lines) {
    const line = raw.replace(/\n$/, "");
    if (!fence && !math && previousBlank && /^\S/.test(line) && offset > start) {
      blocks.push(text.slice(start, offset));
      start = offset;
    }
    if (fence) {
      if (raw.endsWith("\n") && closesFence(line, fence)) fence = null;
    } else if (math) {
      if (raw.endsWith("\n") && isMathFence(line)) math = false;
    } else if (raw.endsWith("\n")) {
      // Only a finished line opens a block: "``" may still become "```".
      fence = fenceOpening(line);
      if (!fence && isMathFence(line)) math = true;
    }
    previousBlank = raw.endsWith("\n") && line.trim() === "";
    offset += raw.length;
  }
  blocks.push(text.slice(start));
  return blocks;
}
