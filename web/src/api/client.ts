import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { UserService, type User } from "../gen/parley/user/v1/user_pb";
import { AdminService } from "../gen/parley/user/v1/admin_pb";
import { ApiConfigService } from "../gen/parley/chat/v1/api_config_pb";
import { PersonaService } from "../gen/parley/chat/v1/persona_pb";
import { SessionService } from "../gen/parley/chat/v1/session_pb";
import { MessageService } from "../gen/parley/chat/v1/message_pb";
import { QuotaService } from "../gen/parley/chat/v1/quota_pb";
import { pageLocale, quotaRefusal, quotaSentence } from "./quota";
import { detailFields, errorInfo, ERROR_DOMAIN } from "./errorDetails";
import { SharedConnectionService } from "../gen/parley/chat/v1/shared_connection_pb";
import { UsageService } from "../gen/parley/chat/v1/usage_pb";
import { ModelService } from "../gen/parley/chat/v1/model_pb";
import { ChatDefaultsService } from "../gen/parley/chat/v1/chat_defaults_pb";
import { PromptService } from "../gen/parley/chat/v1/prompt_pb";
import { FolderService } from "../gen/parley/chat/v1/folder_pb";
import { SessionUnreachable, TokenManager, type SignedIn } from "../auth/tokens";
import { linkTabs } from "../auth/peers";

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
      let renewed: SignedIn<U> | null;
      try {
        renewed = await tokens.refresh();
      } catch (refreshError) {
        // Why the call cannot be retried: Parley is out of reach.
        throw refreshError instanceof SessionUnreachable ? ConnectError.from(refreshError.reason) : refreshError;
      }
      if (!renewed) throw err;
      req.header.set("authorization", `Bearer ${renewed.accessToken}`);
      return await next(req);
    }
  };
}

export type TransportFactory = (interceptors: Interceptor[]) => Transport;

// The UI is served by the gateway itself, so the API is on the same origin.
const sameOriginGrpcWeb: TransportFactory = (interceptors) => createGrpcWebTransport({ baseUrl: window.location.origin, interceptors });

/** The answers to RefreshToken that mean "there is no session" (rather than "try again"). */
const noSessionCodes = new Set([Code.Unauthenticated, Code.InvalidArgument, Code.NotFound, Code.PermissionDenied]);

export function createApi(makeTransport: TransportFactory = sameOriginGrpcWeb) {
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
      if (noSessionCodes.has(ConnectError.from(err).code)) return null;
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
  const peers = linkTabs(tokens);
  return {
    tokens,
    publicUsers,
    /** After Register or Login: holds the new access token and tells the other tabs. */
    signedIn(res: { user?: User; accessToken: string; accessExpiresIn: bigint }): void {
      if (!res.user) return;
      tokens.signedIn({ user: res.user, accessToken: res.accessToken, expiresIn: Number(res.accessExpiresIn) });
      peers.signedIn();
    },
    /** Revokes the refresh cookie, then forgets the session here and in the other tabs.
     * Rejects, still signed in, when the server could not be told. */
    async signOut(): Promise<void> {
      await publicUsers.logout({ refreshToken: "" });
      tokens.signedOut("requested");
      peers.signedOut();
    },
    /** After DeleteAccount: the server already ended every session; the cookie is cleared
     * when it can be (a failure changes nothing, its token no longer works). */
    accountDeleted(): void {
      void publicUsers.logout({ refreshToken: "" }).catch(() => {});
      tokens.signedOut("deleted");
      peers.signedOut();
    },
    users: createClient(UserService, transport),
    /** Administrators only (the server answers PERMISSION_DENIED to anyone else). */
    admin: createClient(AdminService, transport),
    apiConfigs: createClient(ApiConfigService, transport),
    personas: createClient(PersonaService, transport),
    sessions: createClient(SessionService, transport),
    messages: createClient(MessageService, transport),
    /** Usage and limits; all but getMyQuota are for administrators. */
    quotas: createClient(QuotaService, transport),
    /** ListAvailableSharedConnections for everyone; the rest for administrators only. */
    sharedConnections: createClient(SharedConnectionService, transport),
    /** GetMyUsage for everyone; ListUsage for administrators only. */
    usage: createClient(UsageService, transport),
    /** The model picker's lists (every usable config's models) and favourites. */
    models: createClient(ModelService, transport),
    /** What the user's new chats start with. */
    chatDefaults: createClient(ChatDefaultsService, transport),
    /** The prompt library (the composer's / commands). */
    prompts: createClient(PromptService, transport),
    /** The user's chat folders (a chat is moved with UpdateSession's folder_id). */
    folders: createClient(FolderService, transport),
    /** The signed-in transport, for clients created in lazily loaded chunks (rooms), whose
     * descriptors the sign-in page need not download. */
    transport,
  };
}

export type Api = ReturnType<typeof createApi>;

/** The server's message for an error, without the transport's "[code]" prefix; a quota's
 * refusal in the page's language. */
export function errorMessage(err: unknown): string {
  const refusal = quotaRefusal(err);
  if (refusal) return quotaSentence(refusal, pageLocale());
  if (err instanceof ConnectError) return err.rawMessage || Code[err.code];
  if (err instanceof Error) return err.message;
  return String(err);
}

export function errorCode(err: unknown): Code | undefined {
  return err instanceof ConnectError ? err.code : undefined;
}

/** Why the server refused, as its stable code (the `google.rpc.ErrorInfo` reason in Parley's
 * domain, e.g. "PROVIDER_AUTH_FAILED"); undefined when it gave none. */
export function errorReason(err: unknown): string | undefined {
  const info = errorInfo(err);
  return info?.domain === ERROR_DOMAIN && info.reason ? info.reason : undefined;
}

/** The fields a google.rpc.BadRequest names, with what is wrong with each. */
export function fieldViolations(err: unknown): { field: string; description: string }[] {
  if (!(err instanceof ConnectError)) return [];
  // BadRequest { repeated FieldViolation field_violations = 1; } FieldViolation { field = 1; description = 2; }
  const fields = detailFields(err, "google.rpc.BadRequest") ?? [];
  const decoder = new TextDecoder();
  return fields.flatMap(([n, value]) => {
    if (n !== 1 || !(value instanceof Uint8Array)) return [];
    const violation = { field: "", description: "" };
    const reader = new BinaryReader(value);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (wireType !== WireType.LengthDelimited) {
        reader.skip(wireType, field);
        continue;
      }
      const text = decoder.decode(reader.bytes());
      if (field === 1) violation.field = text;
      else if (field === 2) violation.description = text;
    }
    return [violation];
  });
}

/** The seconds the server asked to wait before trying again (the google.rpc.RetryInfo of a
 * RESOURCE_EXHAUSTED answer), rounded up; undefined when it did not say. */
export function retryAfterSeconds(err: unknown): number | undefined {
  if (!(err instanceof ConnectError)) return undefined;
  // RetryInfo { google.protobuf.Duration retry_delay = 1; }
  const delay = detailFields(err, "google.rpc.RetryInfo")?.find(([field]) => field === 1)?.[1];
  if (!(delay instanceof Uint8Array)) return undefined;
  const duration = fromBinary(DurationSchema, delay);
  return Math.max(0, Math.ceil(Number(duration.seconds) + duration.nanos / 1e9));
}
