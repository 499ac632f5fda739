// Which Markdown parts (math, code languages) each chat needed when it was last shown, so
// opening it again fetches them alongside the chat's messages instead of after them. A chat
// never shown on this device (or one that needs a new part) still loads them on first use.
// Only a flag and language names per chat id; forgotten on sign-out.
const storageKey = "parley.markdownParts";
const kept = 50;

export interface MarkdownParts {
  math: boolean;
  languages: string[];
}

function read(): Record<string, MarkdownParts> {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(storageKey) ?? "{}");
    return parsed && typeof parsed === "object" ? (parsed as Record<string, MarkdownParts>) : {};
  } catch {
    return {};
  }
}

export function rememberedParts(chat: string): MarkdownParts | null {
  const parts = read()[chat];
  return parts && typeof parts.math === "boolean" && Array.isArray(parts.languages) ? parts : null;
}

export function rememberParts(chat: string, parts: MarkdownParts): void {
  const all = read();
  const none = !parts.math && parts.languages.length === 0;
  if (none && !(chat in all)) return;
  delete all[chat];
  if (!none) all[chat] = parts;
  // The most recently shown chats are kept (objects keep insertion order for string keys).
  const keys = Object.keys(all);
  for (const old of keys.slice(0, Math.max(0, keys.length - kept))) delete all[old];
  try {
    localStorage.setItem(storageKey, JSON.stringify(all));
  } catch {
    // Storage full or off: the parts load on first use, as on a new device.
  }
}

export function forgetMarkdownParts(): void {
  try {
    localStorage.removeItem(storageKey);
  } catch {
    // Nothing stored.
  }
}
