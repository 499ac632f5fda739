// What the model picker shows: every model of every config the user can chat with (grouped by
// config), the favourites first, narrowed by a search. Pure, so it is unit tested; the lists
// come from ModelService.ListChatModels, which chat-service caches per config, and are kept
// here for a few minutes more so that opening the picker again asks nobody.

import type { FavoriteModel, ListChatModelsResponse, ModelGroup } from "../gen/parley/chat/v1/model_pb";

/** One model of one config, as a row of the picker. */
export interface ModelChoice {
  configId: bigint;
  configName: string;
  shared: boolean;
  model: string;
  /** The config answers with it when a chat names no model. */
  isDefault: boolean;
  favorite: boolean;
}

export interface PickerGroup {
  configId: bigint;
  configName: string;
  shared: boolean;
  /** Why the provider's list could not be read (its own model is still offered). */
  error: string;
  errorReason: string;
  choices: ModelChoice[];
}

export interface PickerView {
  favorites: ModelChoice[];
  groups: PickerGroup[];
  /** Choices shown in all (favourites counted once). */
  count: number;
}

export const favoriteKey = (configId: bigint, model: string) => `${configId}\u0000${model}`;

/** Every word of the query appears in the model's name or its config's name (any case). */
export function matches(choice: Pick<ModelChoice, "model" | "configName">, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const haystack = `${choice.model} ${choice.configName}`.toLowerCase();
  return words.every((w) => haystack.includes(w));
}

export function pickerView(groups: ModelGroup[], favorites: FavoriteModel[], query: string): PickerView {
  const favored = new Set(favorites.map((f) => favoriteKey(f.apiConfigId, f.model)));
  const view: PickerView = { favorites: [], groups: [], count: 0 };
  const byKey = new Map<string, ModelChoice>();
  for (const g of groups) {
    const choices = g.models
      .map<ModelChoice>((model) => ({
        configId: g.apiConfigId,
        configName: g.apiConfigName,
        shared: g.shared,
        model,
        isDefault: model === g.defaultModel,
        favorite: favored.has(favoriteKey(g.apiConfigId, model)),
      }))
      .filter((c) => matches(c, query));
    for (const c of choices) byKey.set(favoriteKey(c.configId, c.model), c);
    view.count += choices.length;
    // A group whose every model is filtered out goes; one that failed to list stays while
    // the search matches its name, so its error can be seen.
    if (choices.length > 0 || (g.error && matches({ model: "", configName: g.apiConfigName }, query))) {
      view.groups.push({
        configId: g.apiConfigId,
        configName: g.apiConfigName,
        shared: g.shared,
        error: g.error,
        errorReason: g.errorReason,
        choices,
      });
    }
  }
  // Favourites in the order they were marked, each only while its config still lists it.
  for (const f of favorites) {
    const choice = byKey.get(favoriteKey(f.apiConfigId, f.model));
    if (choice) view.favorites.push(choice);
  }
  return view;
}

/** The favourites after marking (`on`) or unmarking a model, as the server will have them. */
export function toggledFavorites(
  favorites: FavoriteModel[],
  choice: ModelChoice,
  on: boolean,
  make: (configId: bigint, model: string) => FavoriteModel,
): FavoriteModel[] {
  const key = favoriteKey(choice.configId, choice.model);
  const others = favorites.filter((f) => favoriteKey(f.apiConfigId, f.model) !== key);
  return on ? [...others, make(choice.configId, choice.model)] : others;
}

/** How long the browser reuses a list before asking chat-service again. */
export const BROWSER_CACHE_MS = 5 * 60 * 1000;

/** The last list read, per signed-in API client, with when it was read. */
export class ModelListCache {
  private entry: { at: number; value: ListChatModelsResponse } | null = null;
  constructor(private readonly ttlMs = BROWSER_CACHE_MS) {}

  get(now: number): ListChatModelsResponse | null {
    return this.entry && now - this.entry.at < this.ttlMs ? this.entry.value : null;
  }

  put(value: ListChatModelsResponse, now: number) {
    this.entry = { at: now, value };
  }

  /** Keeps the list but with other favourites (after a star was toggled). */
  setFavorites(favorites: FavoriteModel[]) {
    if (this.entry) this.entry = { ...this.entry, value: { ...this.entry.value, favorites } };
  }

  clear() {
    this.entry = null;
  }
}
