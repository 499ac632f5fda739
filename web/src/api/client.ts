import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { UserService, type User } from "../gen/parley/user/v1/user_pb";
import { ApiConfigService } from "../gen/parley/chat/v1/api_config_pb";
import { PersonaService } from "../gen/parley/chat/v1/persona_pb";
import { SessionService } from "../gen/parley/chat/v1/session_pb";
import { MessageService } from "../gen/parley/chat/v1/message_pb";
import { TokenManager, type SignedIn } from "../auth/tokens";

/** Adds the access token to every call and, for unary calls, retries once after a refresh
 * when the server answered UNAUTHENTICATED (the token expired or its key rotated). Streams
 * are retried by their callers, who know whether anything was received yet. */
export function authInterceptor<U>(tokens: TokenManager<U>): Interceptor {
  return (next) => async (req) => {
    const token = await tokens.validToken();
    if (token) req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (err) {
      if (req.stream || ConnectError.from(err).code !== Code.Unauthenticated) throw err;
      const renewed = await tokens.refresh();
      if (!renewed) throw err;
      req.header.set("authorization", `Bearer ${renewed.accessToken}`);
      return await next(req);
    }
  };
}

function makeTransport(interceptors: Interceptor[]): Transport {
  // The UI is served by the gateway itself, so the API is on the same origin.
  return createGrpcWebTransport({ baseUrl: window.location.origin, interceptors });
}

export function createApi() {
  // Public auth calls go without the interceptor: a refresh must not wait on itself.
  const publicUsers = createClient(UserService, makeTransport([]));
  const refreshWithCookie = async (): Promise<SignedIn<User> | null> => {
    try {
      // An empty refresh_token makes user-service read the HttpOnly parley_refresh cookie,
      // and the answer sets the rotated cookie.
      const res = await publicUsers.refreshToken({ refreshToken: "" });
      if (!res.user) return null;
      return { user: res.user, accessToken: res.accessToken, expiresIn: Number(res.accessExpiresIn) };
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code === Code.Unauthenticated || code === Code.InvalidArgument || code === Code.NotFound) return null;
      throw err;
    }
  };
  // Tabs of one browser share the cookie: one refresh at a time across them, so a second tab
  // uses the cookie the first one just rotated instead of replaying the old one.
  const tokens: TokenManager<User> = new TokenManager<User>(() =>
    typeof navigator !== "undefined" && navigator.locks
      ? navigator.locks.request("parley-refresh", refreshWithCookie)
      : refreshWithCookie(),
  );
  const transport = makeTransport([authInterceptor(tokens)]);
  return {
    tokens,
    publicUsers,
    users: createClient(UserService, transport),
    apiConfigs: createClient(ApiConfigService, transport),
    personas: createClient(PersonaService, transport),
    sessions: createClient(SessionService, transport),
    messages: createClient(MessageService, transport),
  };
}

export type Api = ReturnType<typeof createApi>;

/** The server's message for an error, without the transport's "[code]" prefix. */
export function errorMessage(err: unknown): string {
  if (err instanceof ConnectError) return err.rawMessage || Code[err.code];
  if (err instanceof Error) return err.message;
  return String(err);
}

export function errorCode(err: unknown): Code | undefined {
  return err instanceof ConnectError ? err.code : undefined;
}
