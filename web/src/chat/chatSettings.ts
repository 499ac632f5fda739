// The per-chat (and per-user default) generation settings as a form edits them: numbers typed
// as text, checked against the ranges the server enforces, and the changed ones turned into
// an update with a field mask. Pure, so it is unit tested.

import type { MessageKey } from "../i18n";

export interface SamplingText {
  temperature: string;
  topP: string;
  maxTokens: string;
}

export interface Sampling {
  temperature?: number;
  topP?: number;
  maxTokens?: number;
}

type Rule = { label: MessageKey; path: "temperature" | "top_p" | "max_tokens"; min: number; max: number; whole: boolean };

export const samplingRules: Record<keyof SamplingText, Rule> = {
  temperature: { label: "temperature", path: "temperature", min: 0, max: 2, whole: false },
  topP: { label: "topP", path: "top_p", min: 0, max: 1, whole: false },
  maxTokens: { label: "maxTokens", path: "max_tokens", min: 1, max: 1_000_000, whole: true },
};

export type Problem = { key: MessageKey; vars: Record<string, string | number> };

/** A typed number: empty is "the provider's default" (undefined); else within its range. */
export function parseSetting(text: string, rule: Rule): { value?: number; problem?: Problem } {
  const trimmed = text.trim().replace(",", ".");
  if (trimmed === "") return {};
  const value = Number(trimmed);
  if (!Number.isFinite(value)) return { problem: { key: "mustBeBetween", vars: { field: rule.label, min: rule.min, max: rule.max } } };
  if (rule.whole && !Number.isInteger(value)) return { problem: { key: "mustBeWholeNumber", vars: { field: rule.label } } };
  if (value < rule.min || value > rule.max)
    return { problem: { key: "mustBeBetween", vars: { field: rule.label, min: rule.min, max: rule.max } } };
  return { value };
}

/** The form's text of stored values (unset: empty). */
export function samplingText(s: Sampling): SamplingText {
  const show = (v: number | undefined) => (v === undefined ? "" : String(Math.round(v * 1000) / 1000));
  return { temperature: show(s.temperature), topP: show(s.topP), maxTokens: s.maxTokens === undefined ? "" : String(s.maxTokens) };
}

/** Every field checked: the values, or the problems by field. Problems name the field by its
 * label key (the caller words it). */
export function parseSampling(text: SamplingText): { values: Sampling; problems: Partial<Record<keyof SamplingText, Problem>> } {
  const values: Sampling = {};
  const problems: Partial<Record<keyof SamplingText, Problem>> = {};
  for (const field of Object.keys(samplingRules) as (keyof SamplingText)[]) {
    const parsed = parseSetting(text[field], samplingRules[field]);
    if (parsed.problem) problems[field] = parsed.problem;
    else values[field] = parsed.value;
  }
  return { values, problems };
}

/** The mask paths of the sampling values that differ from what is stored. */
export function changedSamplingPaths(stored: Sampling, next: Sampling): string[] {
  return (Object.keys(samplingRules) as (keyof Sampling)[])
    .filter((field) => stored[field] !== next[field])
    .map((field) => samplingRules[field].path);
}
