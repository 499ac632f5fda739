import { useCallback, useEffect, useMemo, useState } from "react";
import { create } from "@bufbuild/protobuf";
import { useStore } from "../app/store";
import { useT } from "../i18n";
import type { Api } from "../api/client";
import { describeError, describeFailure } from "../ui/errorText";
import { Modal } from "../ui/Modal";
import { useToast } from "../ui/toast";
import { CheckIcon, ChevronDownIcon, RefreshIcon, StarIcon } from "../ui/icons";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import { FavoriteModelSchema, type ListChatModelsResponse } from "../gen/parley/chat/v1/model_pb";
import { ModelListCache, pickerView, toggledFavorites, type ModelChoice } from "./modelCatalog";

// One browser-side list per signed-in client (a new sign-in builds a new Api).
const caches = new WeakMap<Api, ModelListCache>();
function cacheOf(api: Api): ModelListCache {
  let cache = caches.get(api);
  if (!cache) {
    cache = new ModelListCache();
    caches.set(api, cache);
  }
  return cache;
}

/** Forgets the browser's list (a config was added, changed or deleted). */
export function forgetModelLists(api: Api) {
  cacheOf(api).clear();
}

/** The model under the persona's name: opens a searchable list of every model of every
 * config the user can chat with; picking one sets the chat's config and model. */
export function ModelPicker({ session, model, onChanged }: { session: Session; model: string; onChanged: (s: Session) => void }) {
  const t = useT();
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        type="button"
        className="inline-flex max-w-full items-center gap-0.5 rounded px-1 hover:bg-gray-100 hover:text-gray-900"
        onClick={() => setOpen(true)}
        aria-haspopup="dialog"
        aria-label={t("chooseModelFor", { model })}
        data-testid="model-picker-button"
      >
        <span className="truncate" data-testid="header-model">
          {model}
        </span>
        <ChevronDownIcon width={12} height={12} />
      </button>
      <Modal open={open} title={t("chooseModel")} onClose={() => setOpen(false)}>
        {open && (
          <ModelList
            session={session}
            onPicked={(changed) => {
              onChanged(changed);
              setOpen(false);
            }}
          />
        )}
      </Modal>
    </>
  );
}

function ModelList({ session, onPicked }: { session: Session; onPicked: (s: Session) => void }) {
  const t = useT();
  const { api, chatConfigs } = useStore();
  const toast = useToast();
  const cache = cacheOf(api);
  const [list, setList] = useState<ListChatModelsResponse | null>(() => cache.get(Date.now()));
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [query, setQuery] = useState("");

  const load = useCallback(
    async (refresh: boolean) => {
      setLoading(true);
      setError(null);
      try {
        const res = await api.models.listChatModels({ refresh });
        cache.put(res, Date.now());
        setList(res);
      } catch (err) {
        setError(describeError(err, t));
      } finally {
        setLoading(false);
      }
    },
    [api, cache, t],
  );
  useEffect(() => {
    if (!list) void load(false);
    // Once, when the list opens.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const view = useMemo(() => (list ? pickerView(list.groups, list.favorites, query) : null), [list, query]);
  // What the chat answers with now: its config (or the default one) and its model (or the config's).
  const currentConfig = session.apiConfigId ?? chatConfigs[0]?.id;
  const currentModel = session.model || chatConfigs.find((c) => c.id === currentConfig)?.model || "";
  const isCurrent = (c: ModelChoice) => c.configId === currentConfig && c.model === currentModel;

  const pick = async (c: ModelChoice) => {
    try {
      const res = await api.sessions.updateSession({
        id: session.id,
        apiConfigId: c.configId,
        model: c.model,
        updateMask: { paths: ["api_config_id", "model"] },
      });
      if (res.session) onPicked(res.session);
    } catch (err) {
      toast(`${t("couldNotSwitchModel")}: ${describeError(err, t)}`);
    }
  };

  const toggleFavorite = async (c: ModelChoice) => {
    if (!list) return;
    const on = !c.favorite;
    const favorites = toggledFavorites(list.favorites, c, on, (apiConfigId, model) => create(FavoriteModelSchema, { apiConfigId, model }));
    const before = list;
    setList({ ...list, favorites });
    cache.setFavorites(favorites);
    try {
      if (on) await api.models.addFavoriteModel({ apiConfigId: c.configId, model: c.model });
      else await api.models.removeFavoriteModel({ apiConfigId: c.configId, model: c.model });
    } catch (err) {
      setList(before);
      cache.setFavorites(before.favorites);
      toast(`${t("couldNotSaveFavorite")}: ${describeError(err, t)}`);
    }
  };

  const row = (c: ModelChoice, where: string) => (
    <li key={`${where}-${c.configId}-${c.model}`} className="flex items-center gap-1">
      <button
        type="button"
        className="flex min-w-0 flex-1 items-center gap-2 rounded-md px-2 py-1.5 text-left text-sm hover:bg-gray-100 focus-visible:bg-gray-100"
        onClick={() => void pick(c)}
        aria-current={isCurrent(c) ? "true" : undefined}
        data-testid="model-choice"
        data-config={c.configName}
        data-model={c.model}
      >
        <CheckIcon width={14} height={14} className={isCurrent(c) ? "shrink-0" : "invisible shrink-0"} />
        <span className="truncate">{c.model}</span>
        {where === "fav" && <span className="truncate text-xs text-gray-500">· {c.configName}</span>}
        {c.isDefault && <span className="shrink-0 rounded bg-gray-100 px-1 text-[11px] text-gray-600">{t("default")}</span>}
      </button>
      <button
        type="button"
        className={`btn-ghost shrink-0 ${c.favorite ? "text-amber-500" : "text-gray-400"}`}
        onClick={() => void toggleFavorite(c)}
        aria-pressed={c.favorite}
        aria-label={t(c.favorite ? "removeFavorite" : "addFavorite", { model: `${c.model} (${c.configName})` })}
        title={t(c.favorite ? "removeFavorite" : "addFavorite", { model: c.model })}
      >
        <StarIcon width={16} height={16} fill={c.favorite ? "currentColor" : "none"} />
      </button>
    </li>
  );

  return (
    <div className="flex flex-col gap-3" data-testid="model-picker">
      <div className="flex gap-2">
        <label className="sr-only" htmlFor="model-search">
          {t("searchModels")}
        </label>
        <input
          id="model-search"
          type="search"
          className="input flex-1"
          placeholder={t("searchModels")}
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          autoFocus
          autoComplete="off"
        />
        <button
          type="button"
          className="btn-secondary shrink-0"
          onClick={() => void load(true)}
          disabled={loading}
          aria-label={t("refreshModels")}
          title={t("refreshModels")}
        >
          <RefreshIcon width={16} height={16} className={loading ? "animate-spin" : ""} />
        </button>
      </div>
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      {!view && !error && (
        <p className="text-sm text-gray-500" role="status">
          {t("loadingModels")}
        </p>
      )}
      {view && (
        <div className="-mx-2 max-h-[60vh] overflow-y-auto px-2" aria-busy={loading}>
          {view.favorites.length > 0 && (
            <section aria-labelledby="models-favorites" data-testid="model-group" data-group="favorites">
              <h3 id="models-favorites" className="px-2 pb-1 text-xs font-semibold uppercase tracking-wide text-gray-500">
                {t("favoriteModels")}
              </h3>
              <ul className="mb-3">{view.favorites.map((c) => row(c, "fav"))}</ul>
            </section>
          )}
          {view.groups.map((g) => (
            <section
              key={g.configId.toString()}
              aria-labelledby={`models-${g.configId}`}
              data-testid="model-group"
              data-group={g.configName}
            >
              <h3 id={`models-${g.configId}`} className="px-2 pb-1 text-xs font-semibold uppercase tracking-wide text-gray-500">
                {g.configName}
                {g.shared && <span className="ml-1 font-normal normal-case">({t("shared")})</span>}
              </h3>
              {g.error && (
                <p className="mx-2 mb-1 text-xs text-amber-700" data-testid="model-group-error">
                  {t("modelListUnavailable", {
                    reason: describeFailure({ reason: g.errorReason || undefined, message: g.error }, t),
                  })}
                </p>
              )}
              <ul className="mb-3">{g.choices.map((c) => row(c, "group"))}</ul>
            </section>
          ))}
          {view.count === 0 && (
            <p className="px-2 py-4 text-center text-sm text-gray-500" role="status">
              {query ? t("noModelsMatch", { query }) : t("noModels")}
            </p>
          )}
        </div>
      )}
    </div>
  );
}
