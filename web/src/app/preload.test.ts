import { beforeEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { createApi, type Api } from "../api/client";
import { UserSchema, UserService } from "../gen/parley/user/v1/user_pb";
import { SessionSchema, SessionService } from "../gen/parley/chat/v1/session_pb";
import { MessageSchema, MessageService } from "../gen/parley/chat/v1/message_pb";
import { startPreload, takePreloadedChat, takeRestore } from "./preload";

/** The page's real client against in-memory services: RefreshToken signs in user 1 (or, with
 * `session: false`, finds no session); chat 7 has three messages over two pages. */
function stack({ session = true } = {}) {
  const calls = { refresh: 0, getSession: 0, listMessages: 0, tokens: [] as string[] };
  const api: Api = createApi((interceptors) =>
    createRouterTransport(
      ({ service }) => {
        service(UserService, {
          refreshToken() {
            calls.refresh++;
            if (!session) throw new ConnectError("no refresh token", Code.Unauthenticated);
            return { user: create(UserSchema, { id: 1n, username: "ada" }), accessToken: "token-1", accessExpiresIn: 900n };
          },
        });
        service(SessionService, {
          getSession(req, ctx) {
            calls.getSession++;
            calls.tokens.push(ctx.requestHeader.get("authorization") ?? "");
            if (req.id !== 7n) throw new ConnectError("chat not found", Code.NotFound);
            return { session: create(SessionSchema, { id: 7n, title: "Sorting" }) };
          },
        });
        service(MessageService, {
          listMessages(req) {
            calls.listMessages++;
            const all = [1n, 2n, 3n].map((id) => create(MessageSchema, { id, sessionId: req.sessionId, content: `message ${id}` }));
            return req.pageToken === ""
              ? { messages: all.slice(0, 2), nextPageToken: "next" }
              : { messages: all.slice(2), nextPageToken: "" };
          },
        });
      },
      { transport: { interceptors } },
    ),
  );
  return { api, calls };
}

describe("what a page load starts before the first render", () => {
  beforeEach(() => {
    localStorage.clear();
    // Nothing left over from another test.
    takeRestore(stack().api);
  });

  it("is nothing on a device that was not signed in (the sign-in page)", async () => {
    const { api, calls } = stack();
    startPreload(api, "/c/7");
    expect(takeRestore(api)).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls.refresh).toBe(0);
    expect(takePreloadedChat(api, 1n, "7")).toBeNull();
  });

  it("restores the session and fetches the chat of the address, given once to its user", async () => {
    localStorage.setItem("parley.signedIn", "1");
    const { api, calls } = stack();
    startPreload(api, "/c/7");
    const restored = takeRestore(api);
    expect(restored).not.toBeNull();
    expect((await restored)?.user.username).toBe("ada");
    // The restore is handed over once; a second check asks the server itself.
    expect(takeRestore(api)).toBeNull();
    const contents = await takePreloadedChat(api, 1n, "7");
    expect(contents?.session?.title).toBe("Sorting");
    expect(contents?.messages.map((m) => m.content)).toEqual(["message 1", "message 2", "message 3"]);
    expect(calls).toMatchObject({ refresh: 1, getSession: 1, listMessages: 2, tokens: ["Bearer token-1"] });
    expect(takePreloadedChat(api, 1n, "7")).toBeNull();
  });

  it("never gives the chat to another user or another chat, and drops it then", async () => {
    localStorage.setItem("parley.signedIn", "1");
    const { api } = stack();
    startPreload(api, "/c/7");
    await takeRestore(api);
    expect(takePreloadedChat(api, 2n, "7")).toBeNull();
    expect(takePreloadedChat(api, 1n, "7")).toBeNull();

    startPreload(api, "/c/7");
    await takeRestore(api);
    expect(takePreloadedChat(api, 1n, "8")).toBeNull();
    expect(takePreloadedChat(api, 1n, "7")).toBeNull();
  });

  it("drops the chat when the page signs out before showing it", async () => {
    localStorage.setItem("parley.signedIn", "1");
    const { api } = stack();
    startPreload(api, "/c/7");
    await takeRestore(api);
    api.tokens.signedOut("elsewhere");
    expect(takePreloadedChat(api, 1n, "7")).toBeNull();
  });

  it("fetches no chat without a session, nor on another address", async () => {
    localStorage.setItem("parley.signedIn", "1");
    const signedOut = stack({ session: false });
    startPreload(signedOut.api, "/c/7");
    expect(await takeRestore(signedOut.api)).toBeNull();
    expect(takePreloadedChat(signedOut.api, 1n, "7")).toBeNull();
    expect(signedOut.calls.listMessages).toBe(0);

    const elsewhere = stack();
    startPreload(elsewhere.api, "/settings/profile");
    expect((await takeRestore(elsewhere.api))?.user.id).toBe(1n);
    expect(elsewhere.calls.listMessages).toBe(0);
  });

  it("hands a failure to whoever takes the chat", async () => {
    localStorage.setItem("parley.signedIn", "1");
    const { api } = stack();
    startPreload(api, "/c/9");
    await takeRestore(api);
    await expect(takePreloadedChat(api, 1n, "9")).rejects.toMatchObject({ code: Code.NotFound });
  });
});
