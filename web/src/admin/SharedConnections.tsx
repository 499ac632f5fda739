// Shared connections (administration chunk): provider settings users chat with without seeing
// the key; models with prices, per-user token limits, and who may use each.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { errorMessage } from "../api/client";
import { useLocale, useT } from "../i18n";
import type { SharedConnection } from "../gen/parley/chat/v1/shared_connection_pb";
import { ConfirmModal } from "../ui/Modal";
import { formatTokens, parsePrice, priceText } from "../usage/format";

type ModelDraft = { model: string; prompt: string; completion: string };

interface Draft {
  name: string;
  baseUrl: string;
  apiKey: string;
  models: ModelDraft[];
  currency: string;
  daily: string;
  monthly: string;
  everyone: boolean;
}

const emptyDraft: Draft = {
  name: "",
  baseUrl: "",
  apiKey: "",
  models: [{ model: "", prompt: "0", completion: "0" }],
  currency: "",
  daily: "0",
  monthly: "0",
  everyone: true,
};

function draftOf(c: SharedConnection): Draft {
  return {
    name: c.name,
    baseUrl: c.baseUrl,
    apiKey: "",
    models: c.models.map((m) => ({
      model: m.model,
      prompt: priceText(m.promptPriceMicros),
      completion: priceText(m.completionPriceMicros),
    })),
    currency: c.currency,
    daily: c.dailyTokenLimit.toString(),
    monthly: c.monthlyTokenLimit.toString(),
    everyone: c.everyone,
  };
}

/** The models with prices in micro-units per million, or null when a price is not a number. */
function modelsOf(draft: Draft) {
  const models = [];
  for (const m of draft.models) {
    const prompt = parsePrice(m.prompt);
    const completion = parsePrice(m.completion);
    if (prompt === null || completion === null) return null;
    models.push({ model: m.model.trim(), promptPriceMicros: prompt, completionPriceMicros: completion });
  }
  return models;
}

/** A whole number of tokens typed into a limit field (empty: 0). */
const limitOf = (text: string) => (/^\s*\d+\s*$/.test(text) ? BigInt(text.trim()) : text.trim() === "" ? 0n : -1n);

export function SharedConnections() {
  const t = useT();
  const { api } = useStore();
  const [connections, setConnections] = useState<SharedConnection[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [editing, setEditing] = useState<bigint | null>(null);
  const [deleting, setDeleting] = useState<SharedConnection | null>(null);

  const load = useCallback(async () => {
    try {
      const res = await api.sharedConnections.listSharedConnections({});
      setConnections(res.sharedConnections);
    } catch (err) {
      setError(errorMessage(err));
    }
  }, [api]);
  useEffect(() => {
    void load();
  }, [load]);

  const run = async (action: () => Promise<string | null>) => {
    setError(null);
    setNotice(null);
    try {
      setNotice(await action());
      await load();
      return true;
    } catch (err) {
      setError(errorMessage(err));
      return false;
    }
  };

  const save = async (draft: Draft, current: SharedConnection | null) => {
    const models = modelsOf(draft);
    if (!models) {
      setError(t("scInvalidPrice"));
      return false;
    }
    const fields = {
      name: draft.name,
      baseUrl: draft.baseUrl.trim(),
      models,
      currency: draft.currency.trim(),
      dailyTokenLimit: limitOf(draft.daily),
      monthlyTokenLimit: limitOf(draft.monthly),
      everyone: draft.everyone,
    };
    return run(async () => {
      if (!current) {
        await api.sharedConnections.createSharedConnection({ ...fields, apiKey: draft.apiKey });
        return t("scCreated", { name: draft.name.trim() });
      }
      const paths = ["name", "base_url", "models", "currency", "daily_token_limit", "monthly_token_limit", "everyone"];
      if (draft.apiKey) paths.push("api_key");
      await api.sharedConnections.updateSharedConnection({
        id: current.id,
        ...fields,
        apiKey: draft.apiKey || undefined,
        updateMask: { paths },
      });
      setEditing(null);
      return t("scUpdated", { name: draft.name.trim() });
    });
  };

  return (
    <section className="mb-10 space-y-4" aria-labelledby="shared-title">
      <h2 id="shared-title" className="text-lg font-semibold">
        {t("sharedConnections")}
      </h2>
      <p className="text-sm text-gray-600">{t("scIntro")}</p>
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      <p role="status" className={notice ? "alert-ok" : "sr-only"}>
        {notice}
      </p>
      {connections === null ? (
        !error && <p aria-busy="true">{t("loading")}</p>
      ) : connections.length === 0 ? (
        <p className="text-sm text-gray-500">{t("scNone")}</p>
      ) : (
        <ul className="space-y-3" data-testid="shared-connections">
          {connections.map((c) =>
            editing === c.id ? (
              <li key={c.id.toString()} className="rounded-lg border border-gray-200 p-4">
                <ConnectionForm initial={draftOf(c)} editing onSubmit={(d) => save(d, c)} onCancel={() => setEditing(null)} />
              </li>
            ) : (
              <ConnectionItem
                key={c.id.toString()}
                connection={c}
                onEdit={() => setEditing(c.id)}
                onDelete={() => setDeleting(c)}
                onGrant={(accountId) =>
                  run(async () => {
                    await api.sharedConnections.grantSharedConnection({ id: c.id, grantee: { case: "accountId", value: accountId } });
                    return null;
                  })
                }
                onRevoke={(accountId) =>
                  run(async () => {
                    await api.sharedConnections.revokeSharedConnection({ id: c.id, grantee: { case: "accountId", value: accountId } });
                    return null;
                  })
                }
              />
            ),
          )}
        </ul>
      )}
      <details className="rounded-lg border border-gray-200 p-4">
        <summary className="cursor-pointer font-medium">{t("scCreate")}</summary>
        <div className="mt-3">
          <ConnectionForm initial={emptyDraft} onSubmit={(d) => save(d, null)} />
        </div>
      </details>
      <ConfirmModal
        open={deleting !== null}
        title={t("delete")}
        message={t("scDeleteConfirm", { name: deleting?.name ?? "" })}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => {
          const target = deleting;
          setDeleting(null);
          if (target)
            void run(async () => {
              await api.sharedConnections.deleteSharedConnection({ id: target.id });
              return null;
            });
        }}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

function ConnectionItem({
  connection: c,
  onEdit,
  onDelete,
  onGrant,
  onRevoke,
}: {
  connection: SharedConnection;
  onEdit: () => void;
  onDelete: () => void;
  onGrant: (accountId: string) => Promise<boolean>;
  onRevoke: (accountId: string) => Promise<boolean>;
}) {
  const t = useT();
  const { locale } = useLocale();
  const [account, setAccount] = useState("");
  const limit = (n: bigint) => (n === 0n ? t("scNoLimit") : formatTokens(n, locale));
  const grant = async (e: FormEvent) => {
    e.preventDefault();
    if (account.trim() && (await onGrant(account.trim()))) setAccount("");
  };
  return (
    <li className="rounded-lg border border-gray-200 p-4 text-sm" data-shared-connection={c.name}>
      <div className="flex flex-wrap items-start justify-between gap-2">
        <div className="min-w-0">
          <p className="font-medium">
            {c.name}
            {c.everyone && <span className="ml-2 rounded bg-green-100 px-1.5 py-0.5 text-xs text-green-800">{t("scEveryoneBadge")}</span>}
          </p>
          <p className="truncate text-gray-500">
            {c.baseUrl} · {c.apiKeyHint}
          </p>
          <p className="text-gray-600">
            {c.models
              .map(
                (m) =>
                  `${m.model} (${priceText(m.promptPriceMicros)} / ${priceText(m.completionPriceMicros)}${c.currency ? ` ${c.currency}` : ""})`,
              )
              .join(", ")}
          </p>
          <p className="text-gray-600">{t("scLimits", { daily: limit(c.dailyTokenLimit), monthly: limit(c.monthlyTokenLimit) })}</p>
        </div>
        <div className="flex gap-2">
          <button type="button" className="btn-secondary" onClick={onEdit}>
            {t("edit")}
          </button>
          <button type="button" className="btn-secondary" onClick={onDelete}>
            {t("delete")}
          </button>
        </div>
      </div>
      <div className="mt-3">
        <p className="text-gray-600">{t("scGrantedTo")}:</p>
        <ul className="mt-1 flex flex-wrap gap-2">
          {c.grantedAccountIds.length === 0 && <li className="text-gray-500">{t("scNobody")}</li>}
          {c.grantedAccountIds.map((id) => (
            <li key={id} className="inline-flex items-center gap-1 rounded bg-gray-100 px-2 py-0.5 font-mono text-xs">
              {id}
              <button
                type="button"
                className="text-red-700 hover:underline"
                onClick={() => void onRevoke(id)}
                aria-label={`${t("scRevoke")}: ${id}`}
              >
                {t("scRevoke")}
              </button>
            </li>
          ))}
        </ul>
        <form onSubmit={(e) => void grant(e)} className="mt-2 flex gap-2">
          <label className="sr-only" htmlFor={`grant-${c.id}`}>
            {t("scGrantAccount")}
          </label>
          <input
            id={`grant-${c.id}`}
            className="input flex-1 font-mono text-xs"
            placeholder={t("scGrantAccount")}
            value={account}
            onChange={(e) => setAccount(e.target.value)}
          />
          <button type="submit" className="btn-secondary">
            {t("scGrant")}
          </button>
        </form>
      </div>
    </li>
  );
}

function ConnectionForm({
  initial,
  editing = false,
  onSubmit,
  onCancel,
}: {
  initial: Draft;
  editing?: boolean;
  onSubmit: (draft: Draft) => Promise<boolean>;
  onCancel?: () => void;
}) {
  const t = useT();
  const [draft, setDraft] = useState<Draft>(initial);
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<Draft>) => setDraft((d) => ({ ...d, ...patch }));
  const setModel = (i: number, patch: Partial<ModelDraft>) =>
    setDraft((d) => ({ ...d, models: d.models.map((m, j) => (i === j ? { ...m, ...patch } : m)) }));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const saved = await onSubmit(draft);
    setBusy(false);
    if (saved && !editing) setDraft(initial);
  };
  const prefix = editing ? "sc-edit" : "sc-new";
  return (
    <form onSubmit={(e) => void submit(e)} className="space-y-3 text-sm">
      <div className="grid gap-3 sm:grid-cols-2">
        <div>
          <label className="field-label" htmlFor={`${prefix}-name`}>
            {t("scName")}
          </label>
          <input id={`${prefix}-name`} className="input" required value={draft.name} onChange={(e) => set({ name: e.target.value })} />
        </div>
        <div>
          <label className="field-label" htmlFor={`${prefix}-url`}>
            {t("scBaseUrl")}
          </label>
          <input id={`${prefix}-url`} className="input" required value={draft.baseUrl} onChange={(e) => set({ baseUrl: e.target.value })} />
        </div>
        <div className="sm:col-span-2">
          <label className="field-label" htmlFor={`${prefix}-key`}>
            {editing ? t("scApiKeyKeep") : t("scApiKey")}
          </label>
          <input
            id={`${prefix}-key`}
            className="input"
            type="password"
            autoComplete="off"
            required={!editing}
            value={draft.apiKey}
            onChange={(e) => set({ apiKey: e.target.value })}
          />
        </div>
      </div>
      <fieldset className="space-y-2">
        <legend className="field-label">{t("scModels")}</legend>
        {draft.models.map((m, i) => (
          <div key={i} className="flex flex-wrap items-end gap-2">
            <input
              aria-label={t("scModel")}
              className="input min-w-40 flex-1"
              placeholder={t("scModel")}
              required
              value={m.model}
              onChange={(e) => setModel(i, { model: e.target.value })}
            />
            <input
              aria-label={t("scPromptPrice")}
              className="input w-28"
              inputMode="decimal"
              placeholder={t("scPromptPrice")}
              value={m.prompt}
              onChange={(e) => setModel(i, { prompt: e.target.value })}
            />
            <input
              aria-label={t("scCompletionPrice")}
              className="input w-28"
              inputMode="decimal"
              placeholder={t("scCompletionPrice")}
              value={m.completion}
              onChange={(e) => setModel(i, { completion: e.target.value })}
            />
            {draft.models.length > 1 && (
              <button
                type="button"
                className="btn-secondary"
                aria-label={t("scRemoveModel", { model: m.model })}
                onClick={() => set({ models: draft.models.filter((_, j) => j !== i) })}
              >
                ×
              </button>
            )}
          </div>
        ))}
        <button
          type="button"
          className="btn-secondary"
          onClick={() => set({ models: [...draft.models, { model: "", prompt: "0", completion: "0" }] })}
        >
          {t("scAddModel")}
        </button>
      </fieldset>
      <div className="grid gap-3 sm:grid-cols-3">
        <div>
          <label className="field-label" htmlFor={`${prefix}-currency`}>
            {t("scCurrency")}
          </label>
          <input
            id={`${prefix}-currency`}
            className="input"
            maxLength={3}
            value={draft.currency}
            onChange={(e) => set({ currency: e.target.value })}
          />
        </div>
        <div>
          <label className="field-label" htmlFor={`${prefix}-daily`}>
            {t("scDailyLimit")}
          </label>
          <input
            id={`${prefix}-daily`}
            className="input"
            inputMode="numeric"
            value={draft.daily}
            onChange={(e) => set({ daily: e.target.value })}
          />
        </div>
        <div>
          <label className="field-label" htmlFor={`${prefix}-monthly`}>
            {t("scMonthlyLimit")}
          </label>
          <input
            id={`${prefix}-monthly`}
            className="input"
            inputMode="numeric"
            value={draft.monthly}
            onChange={(e) => set({ monthly: e.target.value })}
          />
        </div>
      </div>
      <label className="flex items-center gap-2">
        <input type="checkbox" checked={draft.everyone} onChange={(e) => set({ everyone: e.target.checked })} />
        {t("scEveryone")}
      </label>
      <div className="flex gap-2">
        <button type="submit" className="btn-primary" disabled={busy}>
          {editing ? t("scSave") : t("scCreate")}
        </button>
        {onCancel && (
          <button type="button" className="btn-secondary" onClick={onCancel}>
            {t("cancel")}
          </button>
        )}
      </div>
    </form>
  );
}
