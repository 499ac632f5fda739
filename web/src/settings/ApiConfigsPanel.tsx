import { useEffect, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { useT } from "../i18n";
import type { ApiConfig, TestApiConfigResponse } from "../gen/parley/chat/v1/api_config_pb";
import { ConfirmModal } from "../ui/Modal";
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

function ConfigForm({ config, onDone }: { config?: ApiConfig; onDone: () => void }) {
  const t = useT();
  const { api, reloadConfigs } = useStore();
  const [name, setName] = useState(config?.name ?? "");
  const [baseUrl, setBaseUrl] = useState(config?.baseUrl ?? "https://api.openai.com/v1");
  const [apiKey, setApiKey] = useState("");
  const [model, setModel] = useState(config?.model ?? "");
  const [models, setModels] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [testing, setTesting] = useState(false);
  const [result, setResult] = useState<TestApiConfigResponse | { error: string } | null>(null);

  // Unsaved edits are tested as given; an unchanged stored config is tested by id (its key
  // never leaves the server).
  const target = (): Target | null => {
    if (apiKey) return { case: "settings", value: { baseUrl, apiKey, model } };
    if (config && baseUrl === config.baseUrl && model === config.model) return { case: "id", value: config.id };
    return null;
  };

  /** The provider's models for the picker. Asked for by the button, the failure is shown;
   * fetched by itself (after a test, on opening a saved config), a failure just leaves the
   * model as a text field. */
  const fetchModels = async (tgt: Target, quiet: boolean) => {
    try {
      const res = await api.apiConfigs.listModels({ target: tgt });
      setModels(res.modelIds);
      if (res.modelIds.length > 0) setModel((current) => current || res.modelIds[0]);
    } catch (err) {
      if (!quiet) setResult({ error: describeError(err, t) });
    }
  };

  useEffect(() => {
    if (config) void fetchModels({ case: "id", value: config.id }, true);
    // Once, for the config the form opened with.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

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
      if (res.ok) void fetchModels(tgt, true);
    } catch (err) {
      setResult({ error: describeError(err, t) });
    } finally {
      setTesting(false);
    }
  };

  const loadModels = () => {
    const tgt = target() ?? (config ? ({ case: "id", value: config.id } as const) : null);
    if (!tgt) {
      setResult({ error: t("keyNeededToTest") });
      return;
    }
    void fetchModels(tgt, false);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (config) {
        const paths = ["name", "base_url", "model", ...(apiKey ? ["api_key"] : [])];
        await api.apiConfigs.updateApiConfig({
          id: config.id,
          name,
          baseUrl,
          model,
          apiKey: apiKey || undefined,
          updateMask: { paths },
        });
      } else {
        await api.apiConfigs.createApiConfig({ name, baseUrl, apiKey, model });
      }
      await reloadConfigs();
      onDone();
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };

  const prefix = config ? `cfg-${config.id}` : "cfg-new";
  // The stored key is never sent to another address: a new base URL needs the key again
  // (the server refuses it without, naming api_key).
  const urlChanged = config !== undefined && baseUrl.trim() !== config.baseUrl;
  return (
    <form
      onSubmit={save}
      className="space-y-3 rounded-xl border border-gray-200 bg-gray-50 p-4"
      aria-label={config ? t("edit") : t("addConfig")}
    >
      <div className="grid gap-3 sm:grid-cols-2">
        <div>
          <label className="field-label" htmlFor={`${prefix}-name`}>
            {t("name")}
          </label>
          <input id={`${prefix}-name`} className="input" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        </div>
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
            <button type="button" className="btn-secondary shrink-0 px-3" onClick={loadModels} title={t("loadModels")}>
              {t("loadModels")}
            </button>
          </div>
          {models.length > 0 && <p className="mt-1 text-xs text-gray-500">{t("modelsLoaded", { n: models.length })}</p>}
        </div>
      </div>
      <TestResult result={result} />
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
  const { api, reloadConfigs } = useStore();
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
        message={t("deleteConfigConfirm", { name: config.name })}
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
  const { configs } = useStore();
  const [editing, setEditing] = useState<string | "new" | null>(null);
  return (
    <section className="space-y-4">
      <div className="flex items-center justify-between">
        <h2 className="text-lg font-semibold">{t("apiConfigs")}</h2>
        {editing !== "new" && (
          <button type="button" className="btn-primary" onClick={() => setEditing("new")}>
            {t("addConfig")}
          </button>
        )}
      </div>
      {editing === "new" && <ConfigForm onDone={() => setEditing(null)} />}
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
