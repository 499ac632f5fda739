import { afterEach, describe, expect, it } from "vitest";
import { act, cleanup, render, waitFor } from "@testing-library/react";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { createApi } from "../api/client";
import { StoreProvider, useStore } from "./store";
import { SessionSchema, SessionService, type ListSessionsRequest, type Session } from "../gen/parley/chat/v1/session_pb";
import { PersonaService } from "../gen/parley/chat/v1/persona_pb";
import { ApiConfigService } from "../gen/parley/chat/v1/api_config_pb";
import { SharedConnectionService } from "../gen/parley/chat/v1/shared_connection_pb";
import { UserSchema } from "../gen/parley/user/v1/user_pb";

afterEach(cleanup);

const chat = (id: number, title: string, archived = false) => create(SessionSchema, { id: BigInt(id), title, archived });

/** A chat-service stand-in whose ListSessions answers wait until the test releases them. */
function chatService() {
  const pending: { req: ListSessionsRequest; answer: (sessions: Session[] | Error) => void }[] = [];
  let getSessionCalls = 0;
  // While set, GetSession answers only once it resolves.
  const held: { gate: Promise<void> | null } = { gate: null };
  const api = createApi((interceptors) =>
    createRouterTransport(
      ({ service }) => {
        service(SessionService, {
          listSessions: (req) =>
            new Promise((resolve, reject) =>
              pending.push({ req, answer: (r) => (r instanceof Error ? reject(r) : resolve({ sessions: r, nextPageToken: "" })) }),
            ),
          getSession: async (req) => {
            getSessionCalls++;
            await held.gate;
            return { session: chat(Number(req.id), `fresh ${req.id}`) };
          },
        });
        service(PersonaService, { listPersonas: () => ({ personas: [] }) });
        service(SharedConnectionService, { listAvailableSharedConnections: () => ({ sharedConnections: [] }) });
        service(ApiConfigService, {
          listApiConfigs: () => {
            throw new ConnectError("chat-service unavailable", Code.Unavailable);
          },
        });
      },
      { transport: { interceptors } },
    ),
  );
  return { api, pending, held, getSessionCalls: () => getSessionCalls };
}

function mount(api: ReturnType<typeof createApi>) {
  const store: { current: ReturnType<typeof useStore> | null } = { current: null };
  function Probe() {
    store.current = useStore();
    return null;
  }
  render(
    <StoreProvider api={api} user={create(UserSchema, { id: 1n, username: "alice" })}>
      <Probe />
    </StoreProvider>,
  );
  const get = () => {
    if (!store.current) throw new Error("not mounted");
    return store.current;
  };
  return get;
}

const titles = (sessions: Session[]) => sessions.map((s) => s.title);

describe("the chat list", () => {
  it("applies only the newest reload's answer, whatever order the answers arrive in", async () => {
    const { api, pending } = chatService();
    const store = mount(api);
    await waitFor(() => expect(pending).toHaveLength(1));
    expect(store().sessionsLoad.status).toBe("loading");
    // A second reload asks again; the first answer is now stale.
    act(() => void store().reloadSessions());
    await waitFor(() => expect(pending).toHaveLength(2));
    await act(async () => pending[1].answer([chat(1, "active"), chat(2, "newer")]));
    await act(async () => pending[0].answer([chat(1, "active")]));
    expect(titles(store().sessions).sort()).toEqual(["active", "newer"]);
    expect(store().sessionsLoad.status).toBe("ready");
  });

  it("takes an archived chat out of the list: the archive is a view of its own", async () => {
    const { api, pending } = chatService();
    const store = mount(api);
    await waitFor(() => expect(pending).toHaveLength(1));
    await act(async () => pending[0].answer([chat(1, "kept"), chat(2, "to archive")]));
    act(() => store().upsertSession(chat(2, "to archive", true)));
    expect(titles(store().sessions)).toEqual(["kept"]);
  });

  it("keeps a chat created while a reload was on its way", async () => {
    const { api, pending } = chatService();
    const store = mount(api);
    await waitFor(() => expect(pending).toHaveLength(1));
    act(() => store().upsertSession(chat(3, "just created")));
    await act(async () => pending[0].answer([chat(1, "older")]));
    expect(titles(store().sessions).sort()).toEqual(["just created", "older"]);
  });

  it("reports a failed load (not 'no chats') and recovers on retry", async () => {
    const { api, pending } = chatService();
    const store = mount(api);
    await waitFor(() => expect(pending).toHaveLength(1));
    await act(async () => pending[0].answer(new ConnectError("chat-service unavailable", Code.Unavailable)));
    expect(store().sessionsLoad).toEqual({ status: "failed", error: "chat-service unavailable" });
    act(() => void store().reloadSessions());
    expect(store().sessionsLoad.status).toBe("loading");
    await waitFor(() => expect(pending).toHaveLength(2));
    await act(async () => pending[1].answer([chat(1, "back")]));
    expect(store().sessionsLoad.status).toBe("ready");
    expect(titles(store().sessions)).toEqual(["back"]);
  });

  it("refreshes one chat without listing them all", async () => {
    const { api, pending, getSessionCalls } = chatService();
    const store = mount(api);
    await waitFor(() => expect(pending).toHaveLength(1));
    await act(async () => pending[0].answer([chat(1, "old title"), chat(2, "other")]));
    await act(() => store().refreshSession(1n));
    expect(getSessionCalls()).toBe(1);
    expect(pending).toHaveLength(1);
    expect(titles(store().sessions).sort()).toEqual(["fresh 1", "other"]);
  });

  it("does not put back a chat removed while its refresh was on its way", async () => {
    const { api, pending, held } = chatService();
    const store = mount(api);
    await waitFor(() => expect(pending).toHaveLength(1));
    await act(async () => pending[0].answer([chat(1, "kept"), chat(2, "deleted")]));
    let release = () => {};
    held.gate = new Promise((resolve) => (release = resolve));
    let refreshed: Promise<Session | null> = Promise.resolve(null);
    act(() => void (refreshed = store().refreshSession(2n)));
    act(() => store().removeSession("2"));
    release();
    await act(async () => expect(await refreshed).toBeNull());
    expect(titles(store().sessions)).toEqual(["kept"]);
  });

  it("says when the personas and configs could not be loaded", async () => {
    const { api } = chatService();
    const store = mount(api);
    await waitFor(() => expect(store().catalogLoad).toEqual({ status: "failed", error: "chat-service unavailable" }));
  });
});
