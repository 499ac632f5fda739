// The user's own usage against their account's limits (chat-service's QuotaService.GetMyQuota).
import { useEffect, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useStore } from "../app/store";
import { errorMessage } from "../api/client";
import { formatQuotaValue, quotaRows, type QuotaName } from "../api/quota";
import { useLocale, useT, type MessageKey } from "../i18n";
import type { AccountQuota } from "../gen/parley/chat/v1/quota_pb";

export const quotaLabel: Record<QuotaName, MessageKey> = {
  storedBytes: "quotaStoredBytes",
  sessions: "quotaSessions",
  personas: "quotaPersonas",
  apiConfigs: "quotaApiConfigs",
  messagesPerDay: "quotaMessagesPerDay",
};

export function QuotaPanel() {
  const t = useT();
  const { locale } = useLocale();
  const { api } = useStore();
  const [quota, setQuota] = useState<AccountQuota | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    api.quotas
      .getMyQuota({})
      .then((res) => current && setQuota(res.quota ?? null))
      .catch((err) => current && setError(errorMessage(err)));
    return () => {
      current = false;
    };
  }, [api]);

  if (error)
    return (
      <p role="alert" className="alert-error">
        {error}
      </p>
    );
  if (!quota) return <p aria-busy="true">{t("loading")}</p>;
  const reset = quota.messagesResetAt ? timestampDate(quota.messagesResetAt) : null;
  const usage = quota.usage;
  return (
    <section aria-labelledby="quota-title" className="space-y-4">
      <h2 id="quota-title" className="text-lg font-semibold">
        {t("usageAndLimits")}
      </h2>
      <p className="text-sm text-gray-600">{t("quotaIntro")}</p>
      <ul className="divide-y divide-gray-200 rounded-lg border border-gray-200" data-testid="my-quota">
        {quotaRows(quota).map((row) => {
          const used = formatQuotaValue(row.quota, row.used, locale);
          const limit = row.limit > 0 ? formatQuotaValue(row.quota, row.limit, locale) : t("quotaUnlimited");
          return (
            <li key={row.quota} className="space-y-1 p-3" data-testid={`quota-${row.quota}`} data-limit={row.limit}>
              <div className="flex flex-wrap items-baseline justify-between gap-2">
                <span className="font-medium">{t(quotaLabel[row.quota])}</span>
                <span className="text-sm text-gray-700">
                  {t("quotaUsedOf", { used, limit })}
                  {row.full && (
                    <span className="ml-2 rounded bg-red-100 px-1.5 py-0.5 text-xs font-medium text-red-800">{t("quotaFull")}</span>
                  )}
                  {row.overridden && <span className="ml-2 text-xs text-gray-500">({t("quotaSetForYou")})</span>}
                </span>
              </div>
              {row.limit > 0 && (
                <div
                  className="h-2 overflow-hidden rounded bg-gray-100"
                  role="progressbar"
                  aria-label={t(quotaLabel[row.quota])}
                  aria-valuemin={0}
                  aria-valuemax={row.limit}
                  aria-valuenow={Math.min(row.used, row.limit)}
                >
                  <div className={`h-full ${row.full ? "bg-red-500" : "bg-gray-700"}`} style={{ width: `${row.fraction * 100}%` }} />
                </div>
              )}
            </li>
          );
        })}
      </ul>
      {reset && (
        <p className="text-sm text-gray-600">
          {t("quotaMessagesReset", { time: reset.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }) })}
        </p>
      )}
      {usage && (
        <p className="text-sm text-gray-600">
          {t("quotaTokens", {
            prompt: Number(usage.promptTokens).toLocaleString(locale),
            completion: Number(usage.completionTokens).toLocaleString(locale),
          })}
        </p>
      )}
    </section>
  );
}
