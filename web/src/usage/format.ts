// Token usage and prices as the UI shows them. Amounts arrive as integer micro-units
// (10⁻⁶ of the currency); prices are micro-units per 1,000,000 tokens.
import type { Locale } from "../i18n";

const MICROS = 1_000_000n;

/** A cost of `micros` micro-units of `currency` ("USD"), e.g. "$0.0125" or "US$0.0125" by
 * locale: at least two decimals, more (up to six) only when they are not zero, so small
 * per-chat costs do not show as $0.00. Without a currency, the bare number. */
export function formatCost(micros: bigint, currency: string, locale: Locale): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const whole = abs / MICROS;
  const fraction = (abs % MICROS).toString().padStart(6, "0").replace(/0+$/, "").padEnd(2, "0");
  // Number has every digit a micro-unit amount below 2⁵³ needs; beyond, whole units suffice.
  const value = Number(`${negative ? "-" : ""}${whole}.${fraction}`);
  const digits = fraction.length;
  if (!currency) {
    return value.toLocaleString(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  try {
    return value.toLocaleString(locale, { style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
  } catch {
    // An unknown currency code: the number and the code.
    return `${value.toLocaleString(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${currency}`;
  }
}

/** A price per million tokens typed by an administrator ("0.15") as micro-units per
 * million; null when it is not a non-negative number with at most six decimals. */
export function parsePrice(text: string): bigint | null {
  const match = /^\s*(\d+)(?:[.,](\d{0,6}))?\s*$/.exec(text);
  if (!match) return null;
  return BigInt(match[1]) * MICROS + BigInt((match[2] ?? "").padEnd(6, "0"));
}

/** Micro-units per million as an administrator types them: "0.15", "2", "0". */
export function priceText(micros: bigint): string {
  const whole = micros / MICROS;
  const fraction = (micros % MICROS).toString().padStart(6, "0").replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole.toString();
}

/** Token counts with the locale's grouping: "12,345". */
export function formatTokens(tokens: bigint, locale: Locale): string {
  return Number(tokens).toLocaleString(locale);
}

export interface UsageLike {
  model: string;
  promptTokens: bigint;
  completionTokens: bigint;
  costMicros: bigint;
  currency: string;
  answers: bigint;
}

export interface ModelTotal extends UsageLike {
  key: string;
}

/** Rows summed per model and currency (a model may be reached through several
 * connections), the most tokens first. */
export function totalsByModel(rows: UsageLike[]): ModelTotal[] {
  const totals = new Map<string, ModelTotal>();
  for (const row of rows) {
    const key = `${row.model}\u0000${row.currency}`;
    const total = totals.get(key) ?? {
      key,
      model: row.model,
      currency: row.currency,
      promptTokens: 0n,
      completionTokens: 0n,
      costMicros: 0n,
      answers: 0n,
    };
    total.promptTokens += row.promptTokens;
    total.completionTokens += row.completionTokens;
    total.costMicros += row.costMicros;
    total.answers += row.answers;
    totals.set(key, total);
  }
  const size = (t: ModelTotal) => t.promptTokens + t.completionTokens;
  return [...totals.values()].sort((a, b) => (size(b) > size(a) ? 1 : size(b) < size(a) ? -1 : a.model.localeCompare(b.model)));
}
