// The admin page's usage table: chat-service's usage and limits of the accounts listed on the
// page (matched by User.account_id), and editing one account's quota overrides.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { errorMessage } from "../api/client";
import { formatQuotaValue, overrideDraft, overrideUpdate, quotaNames, quotaRows, type OverrideDraft } from "../api/quota";
import { useLocale, useT } from "../i18n";
import type { User } from "../gen/parley/user/v1/user_pb";
import type { AccountQuota } from "../gen/parley/chat/v1/quota_pb";
import { Modal } from "../ui/Modal";
import { quotaLabel } from "../settings/QuotaPanel";

export function AccountUsage({ users }: { users: User[] }) {
  const t = useT();
  const { locale } = useLocale();
  const { api } = useStore();
  const [quotas, setQuotas] = useState<Map<string, AccountQuota>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [editing, setEditing] = useState<User | null>(null);
  const loadSeq = useRef(0);
  const accountIds = users.map((u) => u.accountId).filter((id) => id !== "");
  const key = accountIds.join(",");

  const load = useCallback(async () => {
    const seq = ++loadSeq.current;
    if (key === "") {
      setQuotas(new Map());
      return;
    }
    try {
      const res = await api.quotas.listAccountUsage({ accountIds: key.split(",") });
      if (seq === loadSeq.current) {
        setQuotas(new Map(res.accounts.map((a) => [a.accountId, a])));
        setError(null);
      }
    } catch (err) {
      if (seq === loadSeq.current) setError(errorMessage(err));
    }
  }, [api, key]);

  useEffect(() => {
    void load();
  }, [load]);

  const rows = users.filter((u) => quotas.has(u.accountId));
  return (
    <section aria-labelledby="usage-title" className="mt-8">
      <h2 id="usage-title" className="mb-2 text-lg font-semibold">
        {t("accountUsage")}
      </h2>
      <p className="mb-4 text-sm text-gray-600">{t("accountUsageIntro")}</p>
      {error && (
        <p role="alert" className="alert-error mb-4">
          {error}
        </p>
      )}
      <p role="status" className={notice ? "alert-ok mb-4" : "sr-only"}>
        {notice}
      </p>
      {rows.length > 0 && (
        <div className="overflow-x-auto rounded-lg border border-gray-200">
          <table className="min-w-full text-sm" data-testid="account-usage">
            <thead className="bg-gray-50 text-left text-xs text-gray-600">
              <tr>
                <th scope="col" className="px-3 py-2 font-medium">
                  {t("account")}
                </th>
                {quotaNames.map((name) => (
                  <th key={name} scope="col" className="px-3 py-2 font-medium">
                    {t(quotaLabel[name])}
                  </th>
                ))}
                <th scope="col" className="px-3 py-2 font-medium">
                  {t("messagesTotal")}
                </th>
                <th scope="col" className="px-3 py-2 font-medium">
                  {t("tokensUsed")}
                </th>
                <th scope="col" className="px-3 py-2">
                  <span className="sr-only">{t("editQuotas")}</span>
                </th>
              </tr>
            </thead>
            <tbody className="divide-y divide-gray-200">
              {rows.map((u) => {
                const quota = quotas.get(u.accountId) as AccountQuota;
                return (
                  <tr key={u.accountId} data-testid="account-usage-row" data-username={u.username}>
                    <th scope="row" className="px-3 py-2 text-left font-medium">
                      {u.displayName || u.username}
                    </th>
                    {quotaRows(quota).map((row) => (
                      <td key={row.quota} className="whitespace-nowrap px-3 py-2" data-testid={`usage-${row.quota}`}>
                        <span className={row.full ? "font-medium text-red-700" : undefined}>
                          {t("quotaUsedOf", {
                            used: formatQuotaValue(row.quota, row.used, locale),
                            limit: row.limit > 0 ? formatQuotaValue(row.quota, row.limit, locale) : t("quotaUnlimited"),
                          })}
                        </span>
                        {row.overridden && <span className="ml-1 text-xs text-gray-500">({t("quotaOverride")})</span>}
                      </td>
                    ))}
                    <td className="px-3 py-2">{Number(quota.usage?.messages ?? 0n).toLocaleString(locale)}</td>
                    <td className="whitespace-nowrap px-3 py-2">
                      {Number(quota.usage?.promptTokens ?? 0n).toLocaleString(locale)} /{" "}
                      {Number(quota.usage?.completionTokens ?? 0n).toLocaleString(locale)}
                    </td>
                    <td className="px-3 py-2">
                      <button
                        type="button"
                        className="btn-secondary"
                        onClick={() => {
                          setNotice(null);
                          setEditing(u);
                        }}
                        aria-label={`${t("editQuotas")}: ${u.username}`}
                      >
                        {t("editQuotas")}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {editing && quotas.get(editing.accountId) && (
        <QuotaEditor
          user={editing}
          quota={quotas.get(editing.accountId) as AccountQuota}
          onClose={() => setEditing(null)}
          onSaved={async () => {
            setNotice(t("quotasSaved", { name: editing.username }));
            setEditing(null);
            await load();
          }}
        />
      )}
    </section>
  );
}

function QuotaEditor({
  user,
  quota,
  onClose,
  onSaved,
}: {
  user: User;
  quota: AccountQuota;
  onClose: () => void;
  onSaved: () => Promise<void>;
}) {
  const t = useT();
  const { locale } = useLocale();
  const { api } = useStore();
  const [draft, setDraft] = useState<OverrideDraft>(() => overrideDraft(quota.overrides));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const update = overrideUpdate(draft);
    if ("invalid" in update) {
      setError(t("quotaInvalid", { quota: t(quotaLabel[update.invalid]) }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.quotas.updateAccountQuota({ accountId: user.accountId, ...update.fields, updateMask: { paths: update.paths } });
      await onSaved();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal open title={t("editQuotasOf", { name: user.username })} onClose={onClose}>
      <form onSubmit={save} className="space-y-3" noValidate>
        {quotaNames.map((name) => {
          const id = `quota-${name}`;
          const fallback = Number(quota.defaults?.[name] ?? 0n);
          return (
            <div key={name}>
              <label className="field-label" htmlFor={id}>
                {t(name === "storedBytes" ? "quotaStoredBytesMib" : quotaLabel[name])}
              </label>
              <input
                id={id}
                className="input"
                inputMode="decimal"
                value={draft[name]}
                placeholder={t("quotaDefault", { value: fallback > 0 ? formatQuotaValue(name, fallback, locale) : t("quotaUnlimited") })}
                onChange={(e) => setDraft((d) => ({ ...d, [name]: e.target.value }))}
              />
            </div>
          );
        })}
        {error && (
          <p role="alert" className="alert-error">
            {error}
          </p>
        )}
        <div className="flex justify-end gap-2">
          <button type="button" className="btn-secondary" onClick={onClose}>
            {t("cancel")}
          </button>
          <button type="submit" className="btn-primary" disabled={busy}>
            {t("save")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
