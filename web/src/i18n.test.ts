import { describe, expect, it } from "vitest";
import { detectLocale, translate } from "./i18n";

describe("i18n", () => {
  it("follows the stored choice, else the browser's languages, else English", () => {
    expect(detectLocale("zh-CN", ["en-US"])).toBe("zh-CN");
    expect(detectLocale(null, ["zh-TW", "en"])).toBe("zh-CN");
    expect(detectLocale(null, ["fr-FR", "en-GB"])).toBe("en");
    expect(detectLocale("xx", ["de"])).toBe("en");
  });
  it("fills in variables", () => {
    expect(translate("en", "connectionOk", { ms: 42 })).toBe("Connected in 42 ms");
    expect(translate("zh-CN", "connectionOk", { ms: 42 })).toBe("连接成功，用时 42 毫秒");
  });
});
