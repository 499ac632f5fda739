import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { translate, type MessageKey } from "../i18n";
import { chatFailure, describeError, describeFailure } from "./errorText";

/** A status as it arrives with a google.rpc.ErrorInfo in Parley's domain. */
function withReason(code: Code, message: string, reason: string, domain = "parley.dev") {
  const err = new ConnectError(message, code);
  const info = new BinaryWriter().tag(1, 2).string(reason).tag(2, 2).string(domain).finish();
  err.details.push({ type: "google.rpc.ErrorInfo", value: info });
  return err;
}

function exhausted(message: string, seconds?: number) {
  const err = new ConnectError(message, Code.ResourceExhausted);
  if (seconds !== undefined) {
    const duration = new BinaryWriter().tag(1, 0).int64(seconds).finish();
    err.details.push({ type: "google.rpc.RetryInfo", value: new BinaryWriter().tag(1, 2).bytes(duration).finish() });
  }
  return err;
}

describe("describeError", () => {
  const en = (key: MessageKey, vars?: Record<string, string | number>) => translate("en", key, vars);
  const zh = (key: MessageKey, vars?: Record<string, string | number>) => translate("zh-CN", key, vars);

  it("says an ended chat must be reopened, in the UI's language", () => {
    const ended = withReason(Code.FailedPrecondition, "this chat was ended; reopen it to continue", "CHAT_ENDED");
    expect(describeError(ended, en)).toBe("This chat was ended: reopen it to continue.");
    expect(describeError(ended, zh)).toBe("此对话已结束：重新开启后才能继续。");
  });

  it("names sampling settings by their labels, not their paths", () => {
    const failure = {
      code: Code.InvalidArgument,
      message: "top_p: must be between 0 and 1",
      fields: [{ field: "top_p", description: "must be between 0 and 1" }],
    };
    expect(describeFailure(failure, en)).toContain("Top-p");
    expect(describeFailure(failure, en)).not.toContain("top_p");
  });

  it("says a limit was reached and how long to wait", () => {
    expect(describeError(exhausted("too many messages", 12), en)).toBe("Limit reached: too many messages. Try again in 12 s.");
    expect(describeError(exhausted("daily token quota used up", 3600), en)).toBe(
      "Limit reached: daily token quota used up. Try again in 60 min.",
    );
    expect(describeError(exhausted("busy"), en)).toBe("Limit reached: busy");
    expect(describeError(exhausted("too many messages", 12), zh)).toBe("已达到限制：too many messages。请在 12 秒后重试。");
  });

  it("leaves other errors without a reason as the server put them", () => {
    expect(describeError(new ConnectError("no API config", Code.FailedPrecondition), en)).toBe("no API config");
  });

  it("words a known reason in the UI's language, with what to do next", () => {
    const refused = withReason(
      Code.FailedPrecondition,
      "llm-service: the provider rejected the request: the API key was not accepted",
      "PROVIDER_AUTH_FAILED",
    );
    expect(describeError(refused, en)).toBe("Your API key was refused by the provider: check it in Settings → API configs.");
    expect(describeError(refused, zh)).toBe("服务商拒绝了你的 API 密钥：请在“设置 → API 配置”中检查。");
    expect(describeError(withReason(Code.NotFound, "the provider has no model `x`", "MODEL_NOT_FOUND"), en)).toMatch(/no such model/);
    expect(describeError(withReason(Code.Unauthenticated, "invalid login or password", "BAD_CREDENTIALS"), zh)).toBe(
      "用户名、邮箱或密码错误。",
    );
    expect(describeError(withReason(Code.PermissionDenied, "the account is disabled", "ACCOUNT_DISABLED"), en)).toMatch(
      /disabled by an administrator/,
    );
  });

  it("adds the wait to a reason that has one", () => {
    const err = withReason(Code.ResourceExhausted, "too many sign-in attempts (retry in 30s)", "RATE_LIMITED");
    const duration = new BinaryWriter().tag(1, 0).int64(30).finish();
    err.details.push({ type: "google.rpc.RetryInfo", value: new BinaryWriter().tag(1, 2).bytes(duration).finish() });
    expect(describeError(err, en)).toBe("Too many requests in a short time. Try again in 30 s.");
    expect(describeError(err, zh)).toBe("短时间内请求过多。请在 30 秒后重试。");
  });

  it("ignores reasons of other domains and unknown reasons", () => {
    expect(describeError(withReason(Code.FailedPrecondition, "their words", "PROVIDER_AUTH_FAILED", "example.com"), en)).toBe(
      "their words",
    );
    expect(describeError(withReason(Code.FailedPrecondition, "newer server", "SOMETHING_NEW"), en)).toBe("newer server");
  });

  it("never shows transport or internal details", () => {
    expect(describeError(new ConnectError("h2 protocol error: stream reset", Code.Internal), en)).toMatch(/went wrong on the server/);
    expect(describeError(new ConnectError("upstream connect error", Code.Unavailable), zh)).toBe("Parley 暂时不可用：请稍后重试。");
    expect(describeError(new ConnectError("Failed to fetch", Code.Unknown), en)).toBe(translate("en", "networkError"));
    expect(describeError(new TypeError("NetworkError when attempting to fetch resource."), en)).toBe(translate("en", "networkError"));
  });

  it("names a bad field by its label, not its path", () => {
    const err = new ConnectError("current_password: is wrong", Code.InvalidArgument);
    const violation = new BinaryWriter().tag(1, 2).string("current_password").tag(2, 2).string("is wrong").finish();
    err.details.push({ type: "google.rpc.BadRequest", value: new BinaryWriter().tag(1, 2).bytes(violation).finish() });
    expect(describeError(err, en)).toBe("Current password: is wrong.");
    expect(describeError(err, zh)).toBe(`${translate("zh-CN", "currentPassword")}：is wrong。`);
  });

  it("words a generation's failure from its ChatError", () => {
    const failure = chatFailure({ code: Code.InvalidArgument, reason: "CONTEXT_TOO_LONG", message: "maximum context length is 8192" });
    expect(describeFailure(failure, en)).toMatch(/too long for the model/);
    expect(describeFailure(chatFailure({ code: 0, reason: "", message: "interrupted" }), en)).toBe("interrupted");
  });
});
