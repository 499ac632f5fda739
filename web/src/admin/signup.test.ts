import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { InviteCodeSchema } from "../gen/parley/user/v1/admin_pb";
import { inviteState } from "./SignupSettings";
import { safeTermsUrl } from "../auth/AuthScreen";

describe("inviteState", () => {
  const now = 1_800_000_000_000;
  const invite = (fields: object) =>
    create(InviteCodeSchema, { id: 1n, maxUses: 2n, uses: 0n, expiresAt: timestampFromMs(now + 60_000), ...fields });
  it("tells revoked, expired, used up and usable apart, revoked first", () => {
    expect(inviteState(invite({}), now)).toBe("usable");
    expect(inviteState(invite({ uses: 2n }), now)).toBe("usedUp");
    expect(inviteState(invite({ expiresAt: timestampFromMs(now - 1000) }), now)).toBe("expired");
    expect(inviteState(invite({ uses: 2n, revokedAt: timestampFromMs(now - 5) }), now)).toBe("revoked");
  });
});

describe("safeTermsUrl", () => {
  it("links only http(s) terms", () => {
    expect(safeTermsUrl("https://example.com/terms")).toBe("https://example.com/terms");
    expect(safeTermsUrl("javascript:alert(1)")).toBe("");
    expect(safeTermsUrl("")).toBe("");
  });
});
