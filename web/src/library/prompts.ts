import type { Prompt } from "../gen/parley/chat/v1/prompt_pb";

/** A `/command` being typed: where its slash is and what follows it up to the caret. The
 * slash starts the message or follows a space or a line break. */
export function slashAt(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const match = /(^|\s)\/([a-z0-9_-]*)$/i.exec(before);
  if (!match) return null;
  return { start: before.length - match[2].length - 1, query: match[2].toLowerCase() };
}

/** The prompts a query names: commands starting with it first, then titles or commands
 * containing it, each group by command. */
export function matchPrompts(query: string, prompts: Prompt[]): Prompt[] {
  const q = query.toLowerCase();
  const byCommand = (a: Prompt, b: Prompt) => a.command.localeCompare(b.command);
  const starts = prompts.filter((p) => p.command.startsWith(q)).sort(byCommand);
  const contains = prompts
    .filter((p) => !p.command.startsWith(q) && (p.command.includes(q) || p.title.toLowerCase().includes(q)))
    .sort(byCommand);
  return [...starts, ...contains];
}

// The server's rule for a variable: `{{name}}`, spaces inside the braces allowed.
const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,31})\s*\}\}/g;

/** The body with each variable replaced by its value (a variable without one stays as written). */
export function fillPrompt(body: string, values: Record<string, string>): string {
  return body.replace(VARIABLE, (whole, name: string) => (Object.hasOwn(values, name) ? values[name] : whole));
}

/** `text` with the typed `/command` (from `start` to `caret`) replaced by `inserted`, and
 * where the caret goes: after it. */
export function replaceCommand(text: string, start: number, caret: number, inserted: string): { text: string; caret: number } {
  const next = text.slice(0, start) + inserted + text.slice(caret);
  return { text: next, caret: start + inserted.length };
}
