// The user's own token usage per model, with cost where an administrator set prices, and
// where they stand against the limits of the shared connections they may use.
import { useEffect, useState } from "react";
import { useStore } from "../app/store";
import { errorMessage } from "../api/client";
import { useLocale, useT } from "../i18n";
import { UsageGrouping, type GetMyUsageResponse } from "../gen/parley/chat/v1/usage_pb";
import type { AvailableSharedConnection } from "../gen/parley/chat/v1/shared_connection_pb";
import { formatCost, formatTokens, totalsByModel } from "../usage/format";

export function TokenUsagePanel() {
  const t = useT();
  const { locale } = useLocale();
  const { api } = useStore();
  const [usage, setUsage] = useState<GetMyUsageResponse | null>(null);
  const [months, setMonths] = useState<GetMyUsageResponse | null>(null);
  const [shared, setShared] = useState<AvailableSharedConnection[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    Promise.all([
      api.usage.getMyUsage({ grouping: UsageGrouping.UNSPECIFIED }),
      api.usage.getMyUsage({ grouping: UsageGrouping.MONTH }),
      api.sharedConnections.listAvailableSharedConnections({}),
    ]).then(
      ([whole, byMonth, available]) => {
        if (cancelled) return;
        setUsage(whole);
        setMonths(byMonth);
        setShared(available.sharedConnections.filter((c) => c.dailyTokenLimit > 0n || c.monthlyTokenLimit > 0n));
      },
      (err) => !cancelled && setError(errorMessage(err)),
    );
    return () => {
      cancelled = true;
    };
  }, [api]);

  if (error)
    return (
      <p role="alert" className="alert-error">
        {error}
      </p>
    );
  if (!usage || !months) return <p aria-busy="true">{t("loading")}</p>;
  const totals = totalsByModel(usage.rows);
  const limit = (n: bigint) => (n === 0n ? t("scNoLimit") : formatTokens(n, locale));
  const monthTotals = [...new Set(months.rows.map((r) => r.period))].map((period) => ({
    period,
    totals: totalsByModel(months.rows.filter((r) => r.period === period)),
  }));
  return (
    <section className="space-y-6" aria-labelledby="usage-title">
      <div>
        <h2 id="usage-title" className="text-lg font-semibold">
          {t("tokenUsage")}
        </h2>
        <p className="text-sm text-gray-600">{t("usageIntro")}</p>
        <p className="text-sm text-gray-500">{t("usageRange", { start: usage.startDate, end: usage.endDate })}</p>
      </div>
      {totals.length === 0 ? <p className="text-sm text-gray-500">{t("usageNone")}</p> : <UsageTable rows={totals} />}
      {monthTotals.length > 1 && (
        <div>
          <h3 className="mb-2 font-medium">{t("usageByMonth")}</h3>
          {monthTotals.map((m) => (
            <div key={m.period} className="mb-4">
              <p className="text-sm font-medium text-gray-700">{m.period}</p>
              <UsageTable rows={m.totals} />
            </div>
          ))}
        </div>
      )}
      {shared.length > 0 && (
        <div>
          <h3 className="mb-2 font-medium">{t("usageLimits")}</h3>
          <ul className="space-y-1 text-sm text-gray-700">
            {shared.map((c) => (
              <li key={c.id.toString()}>
                {c.name}: {t("usageToday", { used: formatTokens(c.tokensUsedToday, locale), limit: limit(c.dailyTokenLimit) })},{" "}
                {t("usageThisMonth", { used: formatTokens(c.tokensUsedThisMonth, locale), limit: limit(c.monthlyTokenLimit) })}
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}

/** Tokens and cost per model; used by the settings panel and the administrators' page. */
export function UsageTable({
  rows,
  firstColumn,
}: {
  rows: {
    key: string;
    model: string;
    promptTokens: bigint;
    completionTokens: bigint;
    answers: bigint;
    costMicros: bigint;
    currency: string;
    label?: string;
  }[];
  firstColumn?: string;
}) {
  const t = useT();
  const { locale } = useLocale();
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm" data-testid="usage-table">
        <thead className="text-gray-500">
          <tr>
            {firstColumn && <th className="py-1 pr-3 font-medium">{firstColumn}</th>}
            <th className="py-1 pr-3 font-medium">{t("usageModel")}</th>
            <th className="py-1 pr-3 text-right font-medium">{t("usagePrompt")}</th>
            <th className="py-1 pr-3 text-right font-medium">{t("usageCompletion")}</th>
            <th className="py-1 pr-3 text-right font-medium">{t("usageAnswers")}</th>
            <th className="py-1 text-right font-medium">{t("usageCost")}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key} className="border-t border-gray-100">
              {firstColumn && <td className="py-1 pr-3">{r.label}</td>}
              <td className="py-1 pr-3">{r.model}</td>
              <td className="py-1 pr-3 text-right tabular-nums">{formatTokens(r.promptTokens, locale)}</td>
              <td className="py-1 pr-3 text-right tabular-nums">{formatTokens(r.completionTokens, locale)}</td>
              <td className="py-1 pr-3 text-right tabular-nums">{formatTokens(r.answers, locale)}</td>
              <td className="py-1 text-right tabular-nums">{r.currency ? formatCost(r.costMicros, r.currency, locale) : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
