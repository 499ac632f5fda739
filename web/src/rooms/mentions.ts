// `@` autocomplete in the room composer: which `@word` the caret is in, which members (and the
// AI) it could mean, and the text once one is picked. Pure, so it is tested without a browser.

/** Someone a mention can name: `handle` is what goes after the `@`. */
export interface MentionCandidate {
  handle: string;
  /** What the list shows beside the handle (a display name, or "AI"). */
  label: string;
}

/** The most suggestions shown at once. */
export const MAX_SUGGESTIONS = 8;

const nameChar = /[\p{L}\p{N}\p{M}_.-]/u;

/** The `@word` being typed at `caret`: where its `@` is and what follows it so far; null when
 * the caret is not in one (an `@` inside a word, as in an address, starts none). */
export function mentionAt(text: string, caret: number): { start: number; query: string } | null {
  let i = caret;
  while (i > 0 && nameChar.test(text[i - 1])) i--;
  if (i === 0 || text[i - 1] !== "@") return null;
  const start = i - 1;
  if (start > 0 && nameChar.test(text[start - 1])) return null;
  return { start, query: text.slice(i, caret) };
}

/** The candidates whose handle (or label) matches `query`, handles starting with it first. */
export function mentionSuggestions(query: string, candidates: MentionCandidate[]): MentionCandidate[] {
  const q = query.toLowerCase();
  const starts = candidates.filter((c) => c.handle.toLowerCase().startsWith(q));
  const contains = candidates.filter(
    (c) => !starts.includes(c) && (c.handle.toLowerCase().includes(q) || c.label.toLowerCase().includes(q)),
  );
  return [...starts, ...contains].slice(0, MAX_SUGGESTIONS);
}

/** `text` with the mention from `start` to `caret` replaced by `@handle ` and where the caret
 * goes after it. */
export function insertMention(text: string, start: number, caret: number, handle: string): { text: string; caret: number } {
  const inserted = `@${handle} `;
  const rest = text.slice(caret).replace(/^ /, "");
  return { text: text.slice(0, start) + inserted + rest, caret: start + inserted.length };
}
