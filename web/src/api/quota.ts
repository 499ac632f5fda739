// Quotas in the UI: reading a refusal (RESOURCE_EXHAUSTED with a google.rpc.ErrorInfo of
// reason QUOTA_EXCEEDED) so it can be said in the user's language, and the arithmetic the
// quota panels share.
import { ERROR_DOMAIN, errorInfo } from "./errorDetails";
import { translate, type Locale, type MessageKey } from "../i18n";
import type { AccountQuota, QuotaOverrides } from "../gen/parley/chat/v1/quota_pb";

export const quotaNames = ["storedBytes", "sessions", "personas", "apiConfigs", "messagesPerDay"] as const;
export type QuotaName = (typeof quotaNames)[number];

/** The names chat-service uses (ErrorInfo metadata, FieldMask paths). */
export const quotaWireName: Record<QuotaName, string> = {
  storedBytes: "stored_bytes",
  sessions: "sessions",
  personas: "personas",
  apiConfigs: "api_configs",
  messagesPerDay: "messages_per_day",
};

export type QuotaRefusal = { quota: QuotaName; limit: number; resetsAt?: Date };

/** Which quota refused the call, its limit and (daily quotas) when it resets; undefined for
 * any other error. */
export function quotaRefusal(err: unknown): QuotaRefusal | undefined {
  const info = errorInfo(err);
  if (info?.domain !== ERROR_DOMAIN || info.reason !== "QUOTA_EXCEEDED") return undefined;
  const quota = quotaNames.find((name) => quotaWireName[name] === info.metadata.quota);
  if (!quota) return undefined;
  const resetsAt = info.metadata.resets_at ? new Date(info.metadata.resets_at) : undefined;
  return { quota, limit: Number(info.metadata.limit ?? 0), resetsAt: resetsAt && !isNaN(resetsAt.getTime()) ? resetsAt : undefined };
}

const refusalKey: Record<QuotaName, MessageKey> = {
  storedBytes: "quotaExceededStoredBytes",
  sessions: "quotaExceededSessions",
  personas: "quotaExceededPersonas",
  apiConfigs: "quotaExceededApiConfigs",
  messagesPerDay: "quotaExceededMessagesPerDay",
};

/** A quota refusal as one sentence in `locale`. */
export function quotaSentence(refusal: QuotaRefusal, locale: Locale): string {
  const limit = refusal.quota === "storedBytes" ? formatBytes(refusal.limit, locale) : refusal.limit.toLocaleString(locale);
  const time = refusal.resetsAt ? refusal.resetsAt.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }) : "";
  return translate(locale, refusalKey[refusal.quota], { limit, time });
}

/** The language the page is shown in (set by the I18nProvider), for messages built outside React. */
export function pageLocale(): Locale {
  return typeof document !== "undefined" && document.documentElement.lang === "zh-CN" ? "zh-CN" : "en";
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number, locale: Locale): string {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (bytes < 1024) return `${bytes.toLocaleString(locale)} B`;
  let value = bytes;
  let unit = "B";
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value.toLocaleString(locale, { maximumFractionDigits: 1 })} ${unit}`;
}

export type QuotaRow = { quota: QuotaName; used: number; limit: number; overridden: boolean; full: boolean; fraction: number };

/** One row per quota: what is used against what is allowed (0: unlimited). */
export function quotaRows(quota: AccountQuota): QuotaRow[] {
  const usage = quota.usage;
  const used: Record<QuotaName, bigint> = {
    storedBytes: usage?.storedBytes ?? 0n,
    sessions: usage?.sessions ?? 0n,
    personas: usage?.personas ?? 0n,
    apiConfigs: usage?.apiConfigs ?? 0n,
    messagesPerDay: usage?.messagesToday ?? 0n,
  };
  return quotaNames.map((name) => {
    const limit = Number(quota.limits?.[name] ?? 0n);
    const value = Number(used[name]);
    return {
      quota: name,
      used: value,
      limit,
      overridden: quota.overrides?.[name] !== undefined,
      full: limit > 0 && value >= limit,
      fraction: limit > 0 ? Math.min(1, value / limit) : 0,
    };
  });
}

/** A value or limit as people read it: bytes in units, counts as numbers, 0 limits as "unlimited". */
export function formatQuotaValue(quota: QuotaName, value: number, locale: Locale): string {
  return quota === "storedBytes" ? formatBytes(value, locale) : value.toLocaleString(locale);
}

/** The form's text for each override: empty where the default applies. Stored bytes are
 * typed in MiB (people do not count bytes), the others as counts. */
export type OverrideDraft = Record<QuotaName, string>;

const MIB = 1024 * 1024;

export function overrideDraft(overrides: QuotaOverrides | undefined): OverrideDraft {
  const draft = {} as OverrideDraft;
  for (const name of quotaNames) {
    const value = overrides?.[name];
    if (value === undefined) draft[name] = "";
    else if (name === "storedBytes") draft[name] = String(Math.round((Number(value) / MIB) * 100) / 100);
    else draft[name] = value.toString();
  }
  return draft;
}

export type OverrideUpdate = { fields: Partial<Record<QuotaName, bigint>>; paths: string[] };

/** The UpdateAccountQuota fields and mask for a draft: every quota is in the mask; an empty
 * one is left unset, which clears the override (the default applies again). `invalid` names
 * the offending quota when a value is not a number ≥ 0 (whole, but for MiB). */
export function overrideUpdate(draft: OverrideDraft): OverrideUpdate | { invalid: QuotaName } {
  const fields: Partial<Record<QuotaName, bigint>> = {};
  for (const name of quotaNames) {
    const text = draft[name].trim();
    if (text === "") continue;
    if (name === "storedBytes") {
      if (!/^\d+(\.\d+)?$/.test(text)) return { invalid: name };
      fields[name] = BigInt(Math.round(Number(text) * MIB));
    } else {
      if (!/^\d+$/.test(text)) return { invalid: name };
      fields[name] = BigInt(text);
    }
  }
  return { fields, paths: quotaNames.map((name) => quotaWireName[name]) };
}
