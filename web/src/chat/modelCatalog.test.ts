import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { FavoriteModelSchema, ListChatModelsResponseSchema, ModelGroupSchema } from "../gen/parley/chat/v1/model_pb";
import { ModelListCache, matches, pickerView, toggledFavorites } from "./modelCatalog";

const groups = [
  create(ModelGroupSchema, { apiConfigId: 1n, apiConfigName: "OpenAI", defaultModel: "gpt-4o", models: ["gpt-4o", "gpt-4o-mini", "o3"] }),
  create(ModelGroupSchema, {
    apiConfigId: 2n,
    apiConfigName: "DeepSeek",
    defaultModel: "deepseek-chat",
    models: ["deepseek-chat", "deepseek-reasoner"],
  }),
  create(ModelGroupSchema, {
    apiConfigId: 3n,
    apiConfigName: "Broken",
    defaultModel: "llama3",
    models: ["llama3"],
    error: "the provider rejected the API key",
    errorReason: "PROVIDER_AUTH_FAILED",
  }),
];
const fav = (apiConfigId: bigint, model: string) => create(FavoriteModelSchema, { apiConfigId, model });

describe("the model picker", () => {
  it("groups every model by its config, favourites first in the order marked", () => {
    const view = pickerView(groups, [fav(2n, "deepseek-reasoner"), fav(1n, "o3"), fav(9n, "gone")], "");
    expect(view.groups.map((g) => g.configName)).toEqual(["OpenAI", "DeepSeek", "Broken"]);
    expect(view.groups[0].choices.map((c) => c.model)).toEqual(["gpt-4o", "gpt-4o-mini", "o3"]);
    expect(view.groups[0].choices[0].isDefault).toBe(true);
    // A favourite of a config no longer listed is left out.
    expect(view.favorites.map((c) => `${c.configName}/${c.model}`)).toEqual(["DeepSeek/deepseek-reasoner", "OpenAI/o3"]);
    expect(view.groups[1].choices.find((c) => c.model === "deepseek-reasoner")?.favorite).toBe(true);
    expect(view.count).toBe(6);
  });

  it("searches model and config names, every word, any case", () => {
    expect(matches({ model: "gpt-4o-mini", configName: "OpenAI" }, "MINI openai")).toBe(true);
    expect(matches({ model: "gpt-4o-mini", configName: "OpenAI" }, "mini deepseek")).toBe(false);
    const view = pickerView(groups, [fav(1n, "o3")], "reason");
    expect(view.groups.map((g) => g.configName)).toEqual(["DeepSeek"]);
    expect(view.groups[0].choices.map((c) => c.model)).toEqual(["deepseek-reasoner"]);
    expect(view.favorites).toEqual([]);
    // A config's name finds all its models; a failed one stays visible with its error.
    const byConfig = pickerView(groups, [], "broken");
    expect(byConfig.groups).toHaveLength(1);
    expect(byConfig.groups[0].error).toContain("API key");
    expect(pickerView(groups, [], "nothing like it").groups).toEqual([]);
  });

  it("toggles a favourite once", () => {
    const view = pickerView(groups, [], "");
    const o3 = view.groups[0].choices[2];
    const on = toggledFavorites([], o3, true, fav);
    expect(on.map((f) => f.model)).toEqual(["o3"]);
    expect(toggledFavorites(on, o3, true, fav)).toHaveLength(1);
    expect(toggledFavorites(on, o3, false, fav)).toEqual([]);
  });

  it("reuses a list in the browser for a while", () => {
    const cache = new ModelListCache(1000);
    const list = create(ListChatModelsResponseSchema, { groups });
    expect(cache.get(0)).toBeNull();
    cache.put(list, 0);
    expect(cache.get(999)).toBe(list);
    cache.setFavorites([fav(1n, "o3")]);
    expect(cache.get(10)?.favorites).toHaveLength(1);
    expect(cache.get(1000)).toBeNull();
    cache.clear();
    expect(cache.get(1)).toBeNull();
  });
});
