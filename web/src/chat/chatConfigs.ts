// What a chat can answer with: the user's own API configs (the first is their default), then
// the shared connections an administrator granted them.
import type { ApiConfig } from "../gen/parley/chat/v1/api_config_pb";
import type { AvailableSharedConnection } from "../gen/parley/chat/v1/shared_connection_pb";

export interface ChatConfig {
  /** An API config id; sessions name a shared connection by it too. */
  id: bigint;
  name: string;
  /** The model it answers with when the chat names none. */
  model: string;
  shared: boolean;
}

export function chatConfigs(own: ApiConfig[], shared: AvailableSharedConnection[]): ChatConfig[] {
  return [
    ...own.map((c) => ({ id: c.id, name: c.name, model: c.model, shared: false })),
    ...shared.map((s) => ({ id: s.id, name: s.name, model: s.models[0]?.model ?? "", shared: true })),
  ];
}
