import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { translate, type MessageKey } from "../i18n";
import { describeError } from "./errorText";

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

  it("says a limit was reached and how long to wait", () => {
    expect(describeError(exhausted("too many messages", 12), en)).toBe("Limit reached: too many messages. Try again in 12 s.");
    expect(describeError(exhausted("daily token quota used up", 3600), en)).toBe(
      "Limit reached: daily token quota used up. Try again in 60 min.",
    );
    expect(describeError(exhausted("busy"), en)).toBe("Limit reached: busy");
    expect(describeError(exhausted("too many messages", 12), zh)).toBe("已达到限制：too many messages。请在 12 秒后重试。");
  });

  it("leaves other errors as the server put them", () => {
    expect(describeError(new ConnectError("no API config", Code.FailedPrecondition), en)).toBe("no API config");
  });
});
