// The API config form's rules, pure so they are unit tested: what a half-filled form still
// needs (said in words, in the order the form asks for it), when the provider's models can
// be loaded by themselves, the name a config gets when none was typed, and where "back to
// the chat" goes after saving.

import type { MessageKey } from "../i18n";
import type { Route } from "../app/router";

export interface ConfigDraft {
  baseUrl: string;
  apiKey: string;
  model: string;
  name: string;
  /** A new config, or a stored one whose base URL changed: the key must be typed. */
  keyRequired: boolean;
}

/** A base URL the server will take: http(s) with a host. */
export function validBaseUrl(text: string): boolean {
  try {
    const url = new URL(text.trim());
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}

/** What is still missing, in the form's order: base URL, API key, model, name. */
export function missingParts(draft: ConfigDraft): MessageKey[] {
  const missing: MessageKey[] = [];
  if (!draft.baseUrl.trim()) missing.push("missingBaseUrl");
  else if (!validBaseUrl(draft.baseUrl)) missing.push("missingValidBaseUrl");
  if (draft.keyRequired && !draft.apiKey) missing.push("missingApiKey");
  if (!draft.model.trim()) missing.push("missingModel");
  if (!draft.name.trim()) missing.push("missingName");
  return missing;
}

/** "a, b and c" in the page's language. */
export function listText(items: string[], locale: string): string {
  return new Intl.ListFormat(locale, { style: "long", type: "conjunction" }).format(items);
}

/** The provider's models can be asked for without a click: a valid base URL and a key. */
export function canLoadModels(baseUrl: string, apiKey: string): boolean {
  return validBaseUrl(baseUrl) && apiKey.trim() !== "";
}

const knownHosts: [RegExp, string][] = [
  [/(^|\.)openai\.com$/, "OpenAI"],
  [/(^|\.)deepseek\.com$/, "DeepSeek"],
  [/(^|\.)dashscope(-intl)?\.aliyuncs\.com$/, "Qwen"],
  [/(^|\.)moonshot\.(cn|ai)$/, "Moonshot"],
  [/(^|\.)openrouter\.ai$/, "OpenRouter"],
  [/(^|\.)groq\.com$/, "Groq"],
];

/** A name for a config from its base URL, when the user typed none. */
export function suggestedName(baseUrl: string): string {
  if (!validBaseUrl(baseUrl)) return "";
  const url = new URL(baseUrl.trim());
  const host = url.hostname.toLowerCase();
  for (const [pattern, name] of knownHosts) if (pattern.test(host)) return name;
  if (url.port === "11434") return "Ollama";
  return host.replace(/^api\./, "");
}

// Where the form was opened from: the empty state of a chat asks for it to open at once and
// to offer the way back once a config is saved.
let pending: { returnTo: Route } | null = null;

export function requestNewConfigForm(returnTo: Route) {
  pending = { returnTo };
}

/** The request, once: the panel reads it when it opens. */
export function takeNewConfigRequest(): { returnTo: Route } | null {
  const request = pending;
  pending = null;
  return request;
}

// The chat open last, for "back to the chat" when the settings were opened from the menu.
let lastChat: Route | null = null;

export function rememberChat(id: string) {
  lastChat = { name: "chat", id };
}

/** Where "back to the chat" goes: where the form was asked for from, else the last chat. */
export function chatToReturnTo(request: { returnTo: Route } | null): Route | null {
  return request?.returnTo ?? lastChat;
}
