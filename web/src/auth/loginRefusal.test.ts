import { describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { loginRefusal } from "./AuthScreen";
import { translate } from "../i18n";

describe("loginRefusal", () => {
  const t = (key: "loginDisabled" | "loginPending") => translate("en", key);
  it("says why a correct password was refused, and nothing for other failures", () => {
    expect(loginRefusal(Code.PermissionDenied, t)).toMatch(/disabled by an administrator/);
    expect(loginRefusal(Code.FailedPrecondition, t)).toMatch(/waiting for approval/);
    expect(loginRefusal(Code.Unauthenticated, t)).toBeUndefined();
    expect(loginRefusal(undefined, t)).toBeUndefined();
  });
  it("has both languages", () => {
    expect(translate("zh-CN", "loginDisabled")).not.toBe(translate("en", "loginDisabled"));
    expect(translate("zh-CN", "loginPending")).not.toBe(translate("en", "loginPending"));
  });
});
