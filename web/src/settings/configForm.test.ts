import { describe, expect, it } from "vitest";
import {
  canLoadModels,
  chatToReturnTo,
  listText,
  missingParts,
  rememberChat,
  requestNewConfigForm,
  suggestedName,
  takeNewConfigRequest,
  validBaseUrl,
} from "./configForm";
import { translate } from "../i18n";

describe("the API config form", () => {
  it("says what a half-filled form still needs, in order", () => {
    const empty = { baseUrl: "", apiKey: "", model: "", name: "", keyRequired: true };
    expect(missingParts(empty)).toEqual(["missingBaseUrl", "missingApiKey", "missingModel", "missingName"]);
    expect(missingParts({ ...empty, baseUrl: "api.openai.com", apiKey: "sk-1" })).toEqual([
      "missingValidBaseUrl",
      "missingModel",
      "missingName",
    ]);
    // A stored config keeps its key unless its base URL changes.
    expect(missingParts({ baseUrl: "https://x.example/v1", apiKey: "", model: "m", name: "n", keyRequired: false })).toEqual([]);
    const words = missingParts(empty).map((k) => translate("en", k));
    expect(translate("en", "stillMissing", { list: listText(words, "en") })).toBe(
      "Still needed: the base URL, the API key, a model, and a name.",
    );
    const zh = missingParts(empty).map((k) => translate("zh-CN", k));
    expect(translate("zh-CN", "stillMissing", { list: listText(zh, "zh-CN") })).not.toMatch(/base_url|api_key/);
  });

  it("loads models by itself once the base URL and key are there", () => {
    expect(canLoadModels("https://api.openai.com/v1", "")).toBe(false);
    expect(canLoadModels("not a url", "sk-1")).toBe(false);
    expect(canLoadModels("ftp://example.com", "sk-1")).toBe(false);
    expect(canLoadModels("http://127.0.0.1:11434/v1", "ollama")).toBe(true);
    expect(validBaseUrl(" https://api.deepseek.com ")).toBe(true);
  });

  it("names a config after its provider", () => {
    expect(suggestedName("https://api.openai.com/v1")).toBe("OpenAI");
    expect(suggestedName("https://api.deepseek.com")).toBe("DeepSeek");
    expect(suggestedName("https://dashscope.aliyuncs.com/compatible-mode/v1")).toBe("Qwen");
    expect(suggestedName("http://127.0.0.1:11434/v1")).toBe("Ollama");
    expect(suggestedName("https://api.example.org/v1")).toBe("example.org");
    expect(suggestedName("nope")).toBe("");
  });

  it("remembers once where the form was asked for from", () => {
    expect(takeNewConfigRequest()).toBeNull();
    requestNewConfigForm({ name: "chat", id: "7" });
    expect(takeNewConfigRequest()).toEqual({ returnTo: { name: "chat", id: "7" } });
    expect(takeNewConfigRequest()).toBeNull();
    // Opened from the menu: back to the chat open last.
    expect(chatToReturnTo(null)).toBeNull();
    rememberChat("9");
    expect(chatToReturnTo(null)).toEqual({ name: "chat", id: "9" });
    expect(chatToReturnTo({ returnTo: { name: "new" } })).toEqual({ name: "new" });
  });
});
