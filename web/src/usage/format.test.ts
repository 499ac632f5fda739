import { describe, expect, it } from "vitest";
import { formatCost, formatTokens, parsePrice, priceText, totalsByModel } from "./format";

describe("formatCost", () => {
  it("shows small costs without rounding them away", () => {
    expect(formatCost(12_500n, "USD", "en")).toBe("$0.0125");
    expect(formatCost(1n, "USD", "en")).toBe("$0.000001");
    expect(formatCost(0n, "USD", "en")).toBe("$0.00");
    expect(formatCost(3_500_000n, "USD", "en")).toBe("$3.50");
    expect(formatCost(1_234_567_890_000n, "EUR", "en")).toBe("€1,234,567.89");
  });

  it("follows the locale and copes with unknown codes", () => {
    expect(formatCost(2_000_000n, "CNY", "zh-CN")).toBe("¥2.00");
    expect(formatCost(450n, "", "en")).toBe("0.00045");
    expect(formatCost(1_500_000n, "XYZ1", "en")).toBe("1.50 XYZ1");
  });
});

describe("prices", () => {
  it("parses what an administrator types and prints it back", () => {
    expect(parsePrice("0.15")).toBe(150_000n);
    expect(parsePrice(" 2 ")).toBe(2_000_000n);
    expect(parsePrice("0,6")).toBe(600_000n);
    expect(parsePrice("1.000001")).toBe(1_000_001n);
    for (const bad of ["", "-1", "1.0000001", "abc", "1e3"]) expect(parsePrice(bad)).toBeNull();
    expect(priceText(150_000n)).toBe("0.15");
    expect(priceText(2_000_000n)).toBe("2");
    expect(priceText(0n)).toBe("0");
  });

  it("groups token counts", () => {
    expect(formatTokens(12_345n, "en")).toBe("12,345");
  });
});

describe("totalsByModel", () => {
  it("sums a model over connections and days, per currency, largest first", () => {
    const row = (model: string, prompt: bigint, cost: bigint, currency = "USD") => ({
      model,
      promptTokens: prompt,
      completionTokens: 10n,
      costMicros: cost,
      currency,
      answers: 1n,
    });
    const totals = totalsByModel([row("small", 2n, 5n), row("big", 100n, 50n), row("big", 100n, 50n), row("big", 1n, 0n, "")]);
    expect(totals.map((t) => [t.model, t.currency, t.promptTokens, t.costMicros, t.answers])).toEqual([
      ["big", "USD", 200n, 100n, 2n],
      ["small", "USD", 2n, 5n, 1n],
      ["big", "", 1n, 0n, 1n],
    ]);
  });
});
