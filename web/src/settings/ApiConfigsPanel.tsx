import { useEffect, useRef, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { useLocale, useT } from "../i18n";
import { forgetModelLists } from "../chat/ModelPicker";
import { canLoadModels, chatToReturnTo, listText, missingParts, suggestedName, takeNewConfigRequest } from "./configForm";
import type { ApiConfig, TestApiConfigResponse } from "../gen/parley/chat/v1/api_config_pb";
import { ConfirmModal } from "../ui/Modal";
import { useLibraryT } from "../library/strings";
import { describeError } from "../ui/errorText";

type Target = { case: "id"; value: bigint } | { case: "settings"; value: { baseUrl: string; apiKey: string; model: string } };

function TestResult({ result }: { result: TestApiConfigResponse | { error: string } | null }) {
  const t = useT();
  if (!result) return null;
  if ("error" in result)
    return (
      <p role="alert" className="alert-error" data-testid="test-result">
        {result.error}
      </p>
    );
  if (result.ok)
    return (
      <p role="status" className="alert-ok" data-testid="test-result">
        {t("connectionOk", { ms: Number(result.latencyMs) })} {!result.modelAvailable && t("modelMissing")}
        {result.message && <span className="block text-xs opacity-80">{result.message}</span>}
      </p>
    );
  return (
    <p role="alert" className="alert-error" data-testid="test-result">
      {result.message || t("failed")}
    </p>
  );
}

function ConfigForm({ config, onDone, onSaved }: { config?: ApiConfig; onDone: () => void; onSaved?: () => void }) {
  const t = useT();
  const { locale } = useLocale();
  const { api, reloadConfigs } = useStore();
  const [name, setName] = useState(config?.name ?? "");
  // The name follows the base URL until the user types one.
  const [nameTyped, setNameTyped] = useState(config !== undefined);
  const [baseUrl, setBaseUrl] = useState(config?.baseUrl ?? "https://api.openai.com/v1");
  const [apiKey, setApiKey] = useState("");
  const [model, setModel] = useState(config?.model ?? "");
  const [models, setModels] = useState<string[]>([]);
  const [modelsState, setModelsState] = useState<{ loading: boolean; error: string | null }>({ loading: false, error: null });
  const [error, setError] = useState<string | null>(null);
  const [missing, setMissing] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [testing, setTesting] = useState(false);
  const [result, setResult] = useState<TestApiConfigResponse | { error: string } | null>(null);
  const shownName = nameTyped ? name : name || suggestedName(baseUrl);

  // Unsaved edits are tested as given; an unchanged stored config is tested by id (its key
  // never leaves the server).
  const target = (): Target | null => {
    if (apiKey) return { case: "settings", value: { baseUrl, apiKey, model } };
    if (config && baseUrl === config.baseUrl && model === config.model) return { case: "id", value: config.id };
    return null;
  };

  /** The provider's models for the picker. Asked for by the button, or by itself once the base
   * URL and key are there; a failure says why under the field, which then takes a typed name. */
  const latest = useRef(0);
  const fetchModels = async (tgt: Target, quiet: boolean) => {
    const call = ++latest.current;
    setModelsState({ loading: true, error: null });
    try {
      const res = await api.apiConfigs.listModels({ target: tgt });
      if (call !== latest.current) return;
      setModels(res.modelIds);
      if (res.modelIds.length > 0)
        setModel((current) => (current && res.modelIds.includes(current) ? current : current || res.modelIds[0]));
      setModelsState({ loading: false, error: null });
    } catch (err) {
      if (call !== latest.current) return;
      setModelsState({ loading: false, error: quiet ? null : describeError(err, t) });
    }
  };

  useEffect(() => {
    if (config) void fetchModels({ case: "id", value: config.id }, true);
    // Once, for the config the form opened with.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Base URL and key typed: the models load by themselves (after a pause in typing).
  useEffect(() => {
    if (!canLoadModels(baseUrl, apiKey)) return;
    const timer = window.setTimeout(
      () => void fetchModels({ case: "settings", value: { baseUrl: baseUrl.trim(), apiKey, model: "" } }, false),
      600,
    );
    return () => window.clearTimeout(timer);
    // fetchModels reads the latest state through its arguments.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [baseUrl, apiKey]);

  const test = async () => {
    const tgt = target();
    if (!tgt) {
      setResult({ error: t("keyNeededToTest") });
      return;
    }
    setTesting(true);
    setResult(null);
    try {
      const res = await api.apiConfigs.testApiConfig({ target: tgt });
      setResult(res);
      if (res.ok && models.length === 0) void fetchModels(tgt, true);
    } catch (err) {
      setResult({ error: describeError(err, t) });
    } finally {
      setTesting(false);
    }
  };

  const loadModels = () => {
    const tgt = target() ?? (config ? ({ case: "id", value: config.id } as const) : null);
    if (!tgt) {
      setModelsState({ loading: false, error: t("keyNeededToTest") });
      return;
    }
    void fetchModels(tgt, false);
  };

  const prefix = config ? `cfg-${config.id}` : "cfg-new";
  // The stored key is never sent to another address: a new base URL needs the key again
  // (the server refuses it without, naming api_key).
  const urlChanged = config !== undefined && baseUrl.trim() !== config.baseUrl;

  const save = async (e: FormEvent) => {
    e.preventDefault();
    // What is missing, in words and in the form's order; the first such field gets the focus.
    const gaps = missingParts({ baseUrl, apiKey, model, name: shownName, keyRequired: !config || urlChanged });
    if (gaps.length > 0) {
      setMissing(
        t("stillMissing", {
          list: listText(
            gaps.map((k) => t(k)),
            locale,
          ),
        }),
      );
      const field = { missingBaseUrl: "url", missingValidBaseUrl: "url", missingApiKey: "key", missingModel: "model", missingName: "name" }[
        gaps[0] as string
      ];
      if (field) document.getElementById(`${prefix}-${field}`)?.focus();
      return;
    }
    setMissing(null);
    setBusy(true);
    setError(null);
    try {
      if (config) {
        const paths = ["name", "base_url", "model", ...(apiKey ? ["api_key"] : [])];
        await api.apiConfigs.updateApiConfig({
          id: config.id,
          name: shownName.trim(),
          baseUrl: baseUrl.trim(),
          model,
          apiKey: apiKey || undefined,
          updateMask: { paths },
        });
      } else {
        await api.apiConfigs.createApiConfig({ name: shownName.trim(), baseUrl: baseUrl.trim(), apiKey, model });
      }
      forgetModelLists(api);
      await reloadConfigs();
      onSaved?.();
      onDone();
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      onSubmit={save}
      noValidate
      className="space-y-3 rounded-xl border border-gray-200 bg-gray-50 p-4"
      aria-label={config ? t("edit") : t("addConfig")}
    >
      {!config && <p className="text-sm text-gray-600">{t("configStepHint")}</p>}
      <div className="grid gap-3 sm:grid-cols-2">
        <div>
          <label className="field-label" htmlFor={`${prefix}-url`}>
            {t("baseUrl")}
          </label>
          <input
            id={`${prefix}-url`}
            className="input"
            type="url"
            value={baseUrl}
            onChange={(e) => setBaseUrl(e.target.value)}
            required
            maxLength={500}
            autoFocus={!config}
          />
        </div>
        <div>
          <label className="field-label" htmlFor={`${prefix}-key`}>
            {t("apiKey")}
          </label>
          <input
            id={`${prefix}-key`}
            className="input"
            type="password"
            autoComplete="off"
            value={apiKey}
            onChange={(e) => setApiKey(e.target.value)}
            required={!config || urlChanged}
            maxLength={500}
            placeholder={config && !urlChanged ? `${config.apiKeyHint} — ${t("apiKeyKeep")}` : "sk-…"}
            aria-describedby={urlChanged ? `${prefix}-key-hint` : undefined}
          />
          {urlChanged && (
            <p id={`${prefix}-key-hint`} className="mt-1 text-sm text-amber-700" data-testid="key-required">
              {t("keyNeededForUrl")}
            </p>
          )}
        </div>
        <div>
          <label className="field-label" htmlFor={`${prefix}-model`}>
            {t("model")}
          </label>
          <div className="flex gap-2">
            {models.length > 0 ? (
              <select id={`${prefix}-model`} className="input" value={model} onChange={(e) => setModel(e.target.value)} required>
                {!models.includes(model) && model && <option value={model}>{model}</option>}
                {models.map((m) => (
                  <option key={m} value={m}>
                    {m}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={`${prefix}-model`}
                className="input"
                value={model}
                onChange={(e) => setModel(e.target.value)}
                required
                maxLength={100}
                placeholder="gpt-4o-mini"
              />
            )}
            <button
              type="button"
              className="btn-secondary shrink-0 px-3"
              onClick={loadModels}
              title={t("loadModels")}
              disabled={modelsState.loading}
            >
              {t("loadModels")}
            </button>
          </div>
          <p className="mt-1 text-xs text-gray-500" role="status" data-testid="models-status">
            {modelsState.loading
              ? t("loadingModelsAuto")
              : modelsState.error
                ? t("modelsLoadFailed", { reason: modelsState.error })
                : models.length > 0
                  ? t("modelsLoaded", { n: models.length })
                  : ""}
          </p>
        </div>
        <div>
          <label className="field-label" htmlFor={`${prefix}-name`}>
            {t("name")}
          </label>
          <input
            id={`${prefix}-name`}
            className="input"
            value={shownName}
            onChange={(e) => {
              setNameTyped(true);
              setName(e.target.value);
            }}
            required
            maxLength={100}
          />
        </div>
      </div>
      <TestResult result={result} />
      {missing && (
        <p role="alert" className="alert-error" data-testid="config-missing">
          {missing}
        </p>
      )}
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      <div className="flex flex-wrap justify-end gap-2">
        <button type="button" className="btn-secondary" onClick={test} disabled={testing}>
          {testing ? t("testing") : t("testConnection")}
        </button>
        <button type="button" className="btn-secondary" onClick={onDone}>
          {t("cancel")}
        </button>
        <button type="submit" className="btn-primary" disabled={busy}>
          {t("save")}
        </button>
      </div>
    </form>
  );
}

function ConfigCard({ config, onEdit }: { config: ApiConfig; onEdit: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api, reloadConfigs, configs } = useStore();
  // Where its chats go: the oldest other config, the default once this one is gone.
  const replacement = configs.find((c) => c.id !== config.id);
  const usage =
    config.sessionCount === 0
      ? lt("configUnused")
      : replacement
        ? lt("configUsedBy", { count: config.sessionCount, replacement: replacement.name })
        : lt("configUsedByLast", { count: config.sessionCount });
  const [result, setResult] = useState<TestApiConfigResponse | { error: string } | null>(null);
  const [testing, setTesting] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const test = async () => {
    setTesting(true);
    setResult(null);
    try {
      setResult(await api.apiConfigs.testApiConfig({ target: { case: "id", value: config.id } }));
    } catch (err) {
      setResult({ error: describeError(err, t) });
    } finally {
      setTesting(false);
    }
  };
  const remove = async () => {
    try {
      await api.apiConfigs.deleteApiConfig({ id: config.id });
      forgetModelLists(api);
      await reloadConfigs();
    } catch (err) {
      setError(describeError(err, t));
    }
  };

  return (
    <li className="rounded-xl border border-gray-200 p-4" data-testid="api-config">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0">
          <h3 className="flex items-center gap-2 font-medium">
            <span className="truncate">{config.name}</span>
            {config.isDefault && <span className="rounded bg-gray-900 px-1.5 py-0.5 text-[11px] text-white">{t("default")}</span>}
            {config.sessionCount > 0 && (
              <span className="text-xs font-normal text-gray-500" data-testid="config-usage">
                {lt("usedByChats", { count: config.sessionCount })}
              </span>
            )}
          </h3>
          <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-3 text-sm text-gray-600">
            <dt>{t("baseUrl")}</dt>
            <dd className="truncate">{config.baseUrl}</dd>
            <dt>{t("model")}</dt>
            <dd className="truncate">{config.model}</dd>
            <dt>{t("keyHint")}</dt>
            <dd className="font-mono" data-testid="key-hint">
              {config.apiKeyHint}
            </dd>
          </dl>
        </div>
        <div className="flex gap-2">
          <button type="button" className="btn-secondary px-3 py-1.5" onClick={test} disabled={testing}>
            {testing ? t("testing") : t("testConnection")}
          </button>
          <button type="button" className="btn-secondary px-3 py-1.5" onClick={onEdit}>
            {t("edit")}
          </button>
          <button type="button" className="btn-secondary px-3 py-1.5 text-red-600" onClick={() => setDeleting(true)}>
            {t("delete")}
          </button>
        </div>
      </div>
      <div className="mt-3 empty:hidden">
        <TestResult result={result} />
        {error && (
          <p role="alert" className="alert-error">
            {error}
          </p>
        )}
      </div>
      <ConfirmModal
        open={deleting}
        title={t("delete")}
        message={`${t("deleteConfigConfirm", { name: config.name })} ${usage}`}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => void remove()}
        onClose={() => setDeleting(false)}
      />
    </li>
  );
}

export function ApiConfigsPanel() {
  const t = useT();
  const { configs, reloadConfigs } = useStore();
  // Read again on opening: how many chats use each config changes as chats are made.
  useEffect(() => {
    reloadConfigs().catch(() => {});
  }, [reloadConfigs]);
  // Opened from a chat's "add a config first": the form at once, and the way back after.
  const [request] = useState(takeNewConfigRequest);
  const [editing, setEditing] = useState<string | "new" | null>(request ? "new" : null);
  const [saved, setSaved] = useState(false);
  const [returnTo] = useState(() => chatToReturnTo(request));
  return (
    <section className="space-y-4">
      <div className="flex items-center justify-between">
        <h2 className="text-lg font-semibold">{t("apiConfigs")}</h2>
        {editing !== "new" && (
          <button
            type="button"
            className="btn-primary"
            onClick={() => {
              setSaved(false);
              setEditing("new");
            }}
          >
            {t("addConfig")}
          </button>
        )}
      </div>
      {saved && (
        <div role="status" className="alert-ok flex flex-wrap items-center justify-between gap-2" data-testid="config-saved">
          <span>{t("configSavedChat")}</span>
          <button type="button" className="btn-primary px-3 py-1" onClick={() => navigate(returnTo ?? { name: "new" })}>
            {returnTo?.name === "chat" ? t("backToChat") : t("startChatting")}
          </button>
        </div>
      )}
      {editing === "new" && <ConfigForm onDone={() => setEditing(null)} onSaved={() => setSaved(true)} />}
      {configs.length === 0 && editing !== "new" && <p className="text-sm text-gray-500">{t("noConfigs")}</p>}
      <ul className="space-y-3">
        {configs.map((c) =>
          editing === c.id.toString() ? (
            <li key={c.id.toString()}>
              <ConfigForm config={c} onDone={() => setEditing(null)} />
            </li>
          ) : (
            <ConfigCard key={c.id.toString()} config={c} onEdit={() => setEditing(c.id.toString())} />
          ),
        )}
      </ul>
    </section>
  );
}
