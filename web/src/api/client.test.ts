import { describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { UserService } from "../gen/parley/user/v1/user_pb";
import { TokenManager, type SignedIn } from "../auth/tokens";
import { authInterceptor, retryAfterSeconds } from "./client";
import { BinaryWriter } from "@bufbuild/protobuf/wire";

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

describe("retryAfterSeconds", () => {
  /** A RESOURCE_EXHAUSTED error as it arrives, with a google.rpc.RetryInfo detail. */
  function exhausted(seconds: number, nanos: number) {
    const duration = new BinaryWriter().tag(1, 0).int64(seconds).tag(2, 0).int32(nanos).finish();
    const retryInfo = new BinaryWriter().tag(1, 2).bytes(duration).finish();
    const err = new ConnectError("a code was sent moments ago", Code.ResourceExhausted);
    err.details.push({ type: "google.rpc.BadRequest", value: new Uint8Array([10, 0]) }, { type: "google.rpc.RetryInfo", value: retryInfo });
    return err;
  }

  it("reads the server's retry delay, rounded up to whole seconds", () => {
    expect(retryAfterSeconds(exhausted(42, 500_000_000))).toBe(43);
    expect(retryAfterSeconds(exhausted(7, 0))).toBe(7);
  });

  it("is undefined when the server did not say", () => {
    expect(retryAfterSeconds(new ConnectError("busy", Code.ResourceExhausted))).toBeUndefined();
    expect(retryAfterSeconds(new Error("offline"))).toBeUndefined();
  });
});
