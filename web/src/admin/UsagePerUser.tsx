// Every account's token usage per model over a date range (administration chunk); accounts
// are shown by username where the user list knows their account id.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { errorMessage } from "../api/client";
import { useT } from "../i18n";
import type { UsageRow } from "../gen/parley/chat/v1/usage_pb";
import { UsageTable } from "../settings/TokenUsagePanel";

export function UsagePerUser() {
  const t = useT();
  const { api } = useStore();
  const [range, setRange] = useState({ start: "", end: "" });
  const [rows, setRows] = useState<UsageRow[] | null>(null);
  const [shown, setShown] = useState({ start: "", end: "" });
  const [names, setNames] = useState(new Map<string, string>());
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(
    async (start: string, end: string) => {
      setError(null);
      try {
        const res = await api.usage.listUsage({ startDate: start, endDate: end });
        setRows(res.rows);
        setShown({ start: res.startDate, end: res.endDate });
      } catch (err) {
        setError(errorMessage(err));
      }
    },
    [api],
  );
  useEffect(() => {
    void load("", "");
    // Usernames for the account ids (the first page of accounts is enough to name most).
    api.admin.listUsers({ pageSize: 200 }).then(
      (res) => setNames(new Map(res.users.map((u) => [u.accountId, u.username]))),
      () => {},
    );
  }, [api, load]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void load(range.start, range.end);
  };

  return (
    <section className="mb-10 space-y-3" aria-labelledby="usage-per-user-title">
      <h2 id="usage-per-user-title" className="text-lg font-semibold">
        {t("usagePerUser")}
      </h2>
      <form onSubmit={submit} className="flex flex-wrap items-end gap-2 text-sm">
        <div>
          <label className="field-label" htmlFor="usage-from">
            {t("usageFrom")}
          </label>
          <input
            id="usage-from"
            type="date"
            className="input"
            value={range.start}
            onChange={(e) => setRange({ ...range, start: e.target.value })}
          />
        </div>
        <div>
          <label className="field-label" htmlFor="usage-to">
            {t("usageTo")}
          </label>
          <input
            id="usage-to"
            type="date"
            className="input"
            value={range.end}
            onChange={(e) => setRange({ ...range, end: e.target.value })}
          />
        </div>
        <button type="submit" className="btn-secondary">
          {t("usageShow")}
        </button>
      </form>
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      {rows && <p className="text-sm text-gray-500">{t("usageRange", { start: shown.start, end: shown.end })}</p>}
      {rows && rows.length === 0 && <p className="text-sm text-gray-500">{t("usageNone")}</p>}
      {rows && rows.length > 0 && (
        <UsageTable
          firstColumn={t("usageAccount")}
          rows={rows.map((r) => ({
            ...r,
            key: `${r.accountId}/${r.connectionId}/${r.model}`,
            label: `${names.get(r.accountId) ?? r.accountId} · ${r.connectionName || t("usageDeletedConnection")}${r.shared ? ` (${t("shared")})` : ""}`,
          }))}
        />
      )}
    </section>
  );
}
