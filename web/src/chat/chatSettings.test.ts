import { describe, expect, it } from "vitest";
import { changedSamplingPaths, parseSampling, parseSetting, samplingRules, samplingText } from "./chatSettings";

describe("chat settings", () => {
  it("reads numbers within the server's ranges; empty is the provider's default", () => {
    expect(parseSetting("", samplingRules.temperature)).toEqual({});
    expect(parseSetting(" 0,7 ", samplingRules.temperature)).toEqual({ value: 0.7 });
    expect(parseSetting("2.5", samplingRules.temperature).problem).toEqual({
      key: "mustBeBetween",
      vars: { field: "temperature", min: 0, max: 2 },
    });
    expect(parseSetting("1.01", samplingRules.topP).problem?.key).toBe("mustBeBetween");
    expect(parseSetting("abc", samplingRules.topP).problem?.key).toBe("mustBeBetween");
    expect(parseSetting("12.5", samplingRules.maxTokens).problem?.key).toBe("mustBeWholeNumber");
    expect(parseSetting("0", samplingRules.maxTokens).problem?.key).toBe("mustBeBetween");
    expect(parseSetting("1000000", samplingRules.maxTokens)).toEqual({ value: 1_000_000 });
  });

  it("checks every field and says which are wrong", () => {
    const { values, problems } = parseSampling({ temperature: "0.2", topP: "9", maxTokens: "" });
    expect(values).toEqual({ temperature: 0.2, maxTokens: undefined });
    expect(Object.keys(problems)).toEqual(["topP"]);
  });

  it("masks only what changed, clearing by leaving a field empty", () => {
    const stored = { temperature: 0.2, topP: 0.9 };
    expect(changedSamplingPaths(stored, { temperature: 0.2, topP: 0.9 })).toEqual([]);
    expect(changedSamplingPaths(stored, { temperature: 1, topP: undefined, maxTokens: 64 })).toEqual([
      "temperature",
      "top_p",
      "max_tokens",
    ]);
    expect(samplingText({ temperature: 0.30000001192092896, maxTokens: 64 })).toEqual({ temperature: "0.3", topP: "", maxTokens: "64" });
  });
});
