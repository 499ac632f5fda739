import { Code, ConnectError } from "@connectrpc/connect";
import { errorCode, errorMessage, errorReason, fieldViolations, retryAfterSeconds } from "../api/client";
import { quotaRefusal } from "../api/quota";
import type { MessageKey } from "../i18n";

type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

/** A failure as the server described it: a thrown call's status, or a generation's ChatError
 * (streamed, or stored on the FAILED answer). */
export interface Failure {
  /** A google.rpc.Code (Connect's Code has the same numbers); undefined for a non-RPC error. */
  code?: Code;
  /** The stable reason code of service-kit's grpc_status::Reason, e.g. "PROVIDER_AUTH_FAILED". */
  reason?: string;
  /** The server's own (English) words. */
  message: string;
  /** Seconds to wait before trying again, when the server said. */
  retryAfter?: number;
  /** The fields a bad request named, with what is wrong with each. */
  fields?: { field: string; description: string }[];
}

/** What each reason means to a person, and what to do next. */
const reasonSentences: Record<string, MessageKey> = {
  QUOTA_EXCEEDED: "reasonQuotaExceeded",
  RATE_LIMITED: "reasonRateLimited",
  TOO_MANY_GENERATIONS: "reasonTooManyGenerations",
  PROVIDER_AUTH_FAILED: "reasonProviderAuthFailed",
  PROVIDER_QUOTA_EXHAUSTED: "reasonProviderQuotaExhausted",
  PROVIDER_RATE_LIMITED: "reasonProviderRateLimited",
  PROVIDER_UNREACHABLE: "reasonProviderUnreachable",
  PROVIDER_ENDPOINT_NOT_FOUND: "reasonProviderEndpointNotFound",
  PROVIDER_ADDRESS_DENIED: "reasonProviderAddressDenied",
  PROVIDER_REFUSED_REQUEST: "reasonProviderRefusedRequest",
  MODEL_NOT_FOUND: "reasonModelNotFound",
  CONTEXT_TOO_LONG: "reasonContextTooLong",
  API_CONFIG_REQUIRED: "reasonApiConfigRequired",
  GENERATION_RUNNING: "reasonGenerationRunning",
  BAD_CREDENTIALS: "reasonBadCredentials",
  ACCOUNT_DISABLED: "loginDisabled",
  ACCOUNT_PENDING: "loginPending",
  CHAT_ENDED: "reasonChatEnded",
};

/** The labels of the fields a bad request may name (the last part of its path), as the forms show them. */
const fieldLabels: Record<string, MessageKey> = {
  username: "username",
  login: "usernameOrEmail",
  password: "password",
  current_password: "currentPassword",
  new_password: "newPassword",
  email: "email",
  display_name: "displayName",
  avatar_url: "avatarUrl",
  name: "name",
  base_url: "baseUrl",
  api_key: "apiKey",
  model: "model",
  description: "description",
  system_prompt: "systemPrompt",
  temperature: "temperature",
  top_p: "topP",
  max_tokens: "maxTokens",
  code: "code",
};

/** The facts of a thrown error. */
export function failureOf(err: unknown): Failure {
  return {
    code: errorCode(err),
    reason: errorReason(err),
    message: errorMessage(err),
    retryAfter: retryAfterSeconds(err),
    fields: fieldViolations(err),
  };
}

/** The facts of a generation's ChatError, or of a FAILED answer's stored error. */
export function chatFailure(error: { code: number; reason: string; message: string }): Failure {
  return { code: error.code ? (error.code as Code) : undefined, reason: error.reason || undefined, message: error.message };
}

/** A request that never reached Parley (offline, DNS, a proxy that closed the connection). */
function unreachable(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return err instanceof TypeError;
  return err.code === Code.Unknown && (err.cause instanceof TypeError || /failed to fetch|networkerror|load failed/i.test(err.rawMessage));
}

/** `sentence`, then when to try again if the server said. */
function withWait(sentence: string, seconds: number | undefined, t: Translate): string {
  if (seconds === undefined) return sentence;
  const wait =
    seconds <= 90 ? t("tryAgainSeconds", { seconds: Math.max(1, seconds) }) : t("tryAgainMinutes", { minutes: Math.ceil(seconds / 60) });
  return t("twoSentences", { first: sentence, second: wait });
}

/** A sentence in the UI's language saying what went wrong and what to do next; the server's
 * English words only where it gave no reason Parley knows and its words are all there is. */
export function describeFailure(failure: Failure, t: Translate): string {
  const sentence = failure.reason ? reasonSentences[failure.reason] : undefined;
  if (sentence) return withWait(t(sentence), failure.retryAfter, t);
  const detail = failure.message;
  switch (failure.code) {
    case Code.ResourceExhausted:
      if (failure.retryAfter === undefined) return t("limitReached", { detail });
      if (failure.retryAfter <= 90) return t("limitReachedSeconds", { detail, seconds: Math.max(1, failure.retryAfter) });
      return t("limitReachedMinutes", { detail, minutes: Math.ceil(failure.retryAfter / 60) });
    case Code.InvalidArgument:
    case Code.AlreadyExists: {
      // A form's field by the name the form gives it, not its path in the request.
      const named = (failure.fields ?? []).filter((v) => v.field);
      if (named.length === 0) return detail;
      return named
        .map((v) => {
          const last = v.field.split(".").pop() ?? v.field;
          const label = fieldLabels[last] ? t(fieldLabels[last]) : last.replaceAll("_", " ");
          return t("fieldProblem", { field: label, problem: v.description });
        })
        .reduce((first, second) => t("twoSentences", { first, second }));
    }
    case Code.Unavailable:
      return withWait(t("errServerUnavailable"), failure.retryAfter, t);
    case Code.DeadlineExceeded:
      return t("errTimeout");
    case Code.Internal:
    case Code.DataLoss:
      return t("errInternal");
    case Code.Unauthenticated:
      return t("sessionExpired");
    default:
      return detail;
  }
}

/** What to show for a failed call, in the UI's language (see describeFailure). */
export function describeError(err: unknown, t: Translate): string {
  if (unreachable(err)) return t("networkError");
  // A quota's refusal names the quota, its limit and when it resets, already in the page's language.
  if (quotaRefusal(err)) return errorMessage(err);
  return describeFailure(failureOf(err), t);
}
