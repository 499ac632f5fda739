import type { MessageKey } from "../i18n";

type Translate = (key: MessageKey) => string;

// The built-in personas are seeded in English (chat-service migration 0001) and read-only, so
// their seeded names identify them; the UI shows them in its own language.
const builtInTexts: Record<string, { name: MessageKey; description: MessageKey }> = {
  "General assistant": { name: "personaGeneralName", description: "personaGeneralDescription" },
  中英翻译: { name: "personaTranslatorName", description: "personaTranslatorDescription" },
  "Code reviewer": { name: "personaReviewerName", description: "personaReviewerDescription" },
  "Writing editor": { name: "personaEditorName", description: "personaEditorDescription" },
};

/** A persona's name and description as the UI shows them: a built-in one's in the UI's language. */
export function personaText(
  persona: { name: string; description: string; builtIn: boolean },
  t: Translate,
): { name: string; description: string } {
  const texts = persona.builtIn ? builtInTexts[persona.name] : undefined;
  if (!texts) return { name: persona.name, description: persona.description };
  return { name: t(texts.name), description: t(texts.description) };
}
