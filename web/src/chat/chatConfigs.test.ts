import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { ApiConfigSchema } from "../gen/parley/chat/v1/api_config_pb";
import { AvailableSharedConnectionSchema, SharedModelSchema } from "../gen/parley/chat/v1/shared_connection_pb";
import { chatConfigs } from "./chatConfigs";

describe("chatConfigs", () => {
  it("lists own configs first (the default stays first), then shared connections with their default model", () => {
    const own = [create(ApiConfigSchema, { id: 3n, name: "mine", model: "m1" })];
    const shared = [
      create(AvailableSharedConnectionSchema, {
        id: 1n,
        name: "team",
        models: [create(SharedModelSchema, { model: "big" }), create(SharedModelSchema, { model: "small" })],
      }),
    ];
    expect(chatConfigs(own, shared)).toEqual([
      { id: 3n, name: "mine", model: "m1", shared: false },
      { id: 1n, name: "team", model: "big", shared: true },
    ]);
    expect(chatConfigs([], shared)[0].shared).toBe(true);
  });
});
