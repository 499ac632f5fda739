import { Code } from "@connectrpc/connect";
import { errorCode, errorMessage, retryAfterSeconds } from "../api/client";
import type { MessageKey } from "../i18n";

type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

/** What to show for a failed call: the server's message, and for RESOURCE_EXHAUSTED (a quota
 * or a rate limit) a sentence saying so and, when the server said, how long to wait. */
export function describeError(err: unknown, t: Translate): string {
  const message = errorMessage(err);
  if (errorCode(err) !== Code.ResourceExhausted) return message;
  const seconds = retryAfterSeconds(err);
  if (seconds === undefined) return t("limitReached", { detail: message });
  if (seconds <= 90) return t("limitReachedSeconds", { detail: message, seconds: Math.max(1, seconds) });
  return t("limitReachedMinutes", { detail: message, minutes: Math.ceil(seconds / 60) });
}
