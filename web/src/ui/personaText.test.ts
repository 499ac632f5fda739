import { describe, expect, it } from "vitest";
import { translate, type MessageKey } from "../i18n";
import { personaText } from "./personaText";

describe("personaText", () => {
  const zh = (key: MessageKey) => translate("zh-CN", key);
  const en = (key: MessageKey) => translate("en", key);

  it("shows the built-in personas in the UI's language", () => {
    const general = { name: "General assistant", description: "A helpful, concise assistant for everyday questions.", builtIn: true };
    expect(personaText(general, zh)).toEqual({ name: "通用助手", description: "有用、简洁的助手，回答日常问题。" });
    expect(personaText(general, en).name).toBe("General assistant");
    expect(personaText({ name: "中英翻译", description: "Chinese ⇄ English translator.", builtIn: true }, en).name).toBe(
      "Chinese ⇄ English translator",
    );
  });

  it("leaves the user's own personas as they wrote them", () => {
    const own = { name: "General assistant", description: "mine", builtIn: false };
    expect(personaText(own, zh)).toEqual({ name: "General assistant", description: "mine" });
  });
});
