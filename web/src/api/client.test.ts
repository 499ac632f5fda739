import { describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { UserService } from "../gen/parley/user/v1/user_pb";
import { TokenManager, type SignedIn } from "../auth/tokens";
import { authInterceptor } from "./client";

// A user-service stand-in that accepts only the newest token, as after a key rotation.
function setup(refreshResult: () => SignedIn<string> | null) {
  let valid = "token-1";
  const seen: string[] = [];
  let refreshes = 0;
  const tokens = new TokenManager<string>(async () => {
    refreshes++;
    const next = refreshResult();
    if (next) valid = next.accessToken;
    return next;
  });
  const transport = createRouterTransport(
    ({ service }) => {
      service(UserService, {
        getMe(_req, ctx) {
          const auth = ctx.requestHeader.get("authorization") ?? "";
          seen.push(auth);
          if (auth !== `Bearer ${valid}`) throw new ConnectError("access token expired", Code.Unauthenticated);
          return { user: { username: "alice" } };
        },
      });
    },
    { transport: { interceptors: [authInterceptor(tokens)] } },
  );
  return { tokens, client: createClient(UserService, transport), seen, refreshes: () => refreshes, rotate: (t: string) => (valid = t) };
}

describe("authInterceptor", () => {
  it("sends the access token as a bearer header", async () => {
    const { tokens, client, seen } = setup(() => null);
    tokens.signedIn({ user: "alice", accessToken: "token-1", expiresIn: 900 });
    const res = await client.getMe({});
    expect(res.user?.username).toBe("alice");
    expect(seen).toEqual(["Bearer token-1"]);
  });

  it("refreshes once after UNAUTHENTICATED and retries the call with the new token", async () => {
    const { tokens, client, seen, refreshes, rotate } = setup(() => ({ user: "alice", accessToken: "token-2", expiresIn: 900 }));
    tokens.signedIn({ user: "alice", accessToken: "token-1", expiresIn: 900 });
    rotate("something-else");
    const res = await client.getMe({});
    expect(res.user?.username).toBe("alice");
    expect(seen).toEqual(["Bearer token-1", "Bearer token-2"]);
    expect(refreshes()).toBe(1);
  });

  it("gives up and signs out when the refresh is refused", async () => {
    const { tokens, client, refreshes, rotate } = setup(() => null);
    tokens.signedIn({ user: "alice", accessToken: "token-1", expiresIn: 900 });
    rotate("something-else");
    await expect(client.getMe({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(refreshes()).toBe(1);
    expect(tokens.currentToken()).toBeNull();
  });
});
