import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { AccountQuotaSchema } from "../gen/parley/chat/v1/quota_pb";
import { errorMessage } from "./client";
import { formatBytes, overrideDraft, overrideUpdate, quotaRefusal, quotaRows, quotaSentence } from "./quota";

/** A refusal as chat-service sends it: RESOURCE_EXHAUSTED with a google.rpc.ErrorInfo. */
function refused(reason: string, metadata: Record<string, string>) {
  const info = new BinaryWriter().tag(1, 2).string(reason).tag(2, 2).string("parley.dev");
  for (const [key, value] of Object.entries(metadata)) {
    info.tag(3, 2).bytes(new BinaryWriter().tag(1, 2).string(key).tag(2, 2).string(value).finish());
  }
  const err = new ConnectError("quota exceeded (server's words)", Code.ResourceExhausted);
  err.details.push(
    { type: "google.rpc.RetryInfo", value: new Uint8Array([10, 0]) },
    { type: "google.rpc.ErrorInfo", value: info.finish() },
  );
  return err;
}

describe("quotaRefusal", () => {
  it("reads the quota, its limit and when a daily one resets", () => {
    const err = refused("QUOTA_EXCEEDED", { quota: "messages_per_day", limit: "1000", resets_at: "2026-12-04T00:00:00Z" });
    expect(quotaRefusal(err)).toEqual({ quota: "messagesPerDay", limit: 1000, resetsAt: new Date("2026-12-04T00:00:00Z") });
    expect(quotaRefusal(refused("QUOTA_EXCEEDED", { quota: "api_configs", limit: "20" }))).toEqual({
      quota: "apiConfigs",
      limit: 20,
      resetsAt: undefined,
    });
  });

  it("ignores every other error", () => {
    expect(quotaRefusal(refused("SOMETHING_ELSE", { quota: "sessions", limit: "1" }))).toBeUndefined();
    expect(quotaRefusal(refused("QUOTA_EXCEEDED", { quota: "unknown", limit: "1" }))).toBeUndefined();
    expect(quotaRefusal(new ConnectError("busy", Code.ResourceExhausted))).toBeUndefined();
    expect(quotaRefusal(new Error("offline"))).toBeUndefined();
  });

  it("becomes a sentence in the user's language, also through errorMessage", () => {
    const sessions = { quota: "sessions" as const, limit: 1000 };
    expect(quotaSentence(sessions, "en")).toBe("You have reached your limit of 1,000 chats. Delete a chat to start a new one.");
    expect(quotaSentence(sessions, "zh-CN")).toContain("1,000");
    expect(quotaSentence({ quota: "storedBytes", limit: 100 * 1024 * 1024 }, "en")).toContain("100 MiB");
    const daily = quotaSentence({ quota: "messagesPerDay", limit: 5, resetsAt: new Date("2026-12-04T00:00:00Z") }, "en");
    expect(daily).toMatch(/^You have sent your 5 messages for today\. You can send more after .*2026.*\.$/);
    expect(errorMessage(refused("QUOTA_EXCEEDED", { quota: "personas", limit: "50" }))).toBe(
      "You have reached your limit of 50 personas. Delete one to add another.",
    );
    expect(errorMessage(new ConnectError("plain", Code.ResourceExhausted))).toBe("plain");
  });
});

describe("quota arithmetic", () => {
  it("formats bytes in binary units", () => {
    expect(formatBytes(512, "en")).toBe("512 B");
    expect(formatBytes(1536, "en")).toBe("1.5 KiB");
    expect(formatBytes(100 * 1024 * 1024, "en")).toBe("100 MiB");
  });

  it("puts usage against limits, 0 being unlimited", () => {
    const quota = create(AccountQuotaSchema, {
      limits: { storedBytes: 1000n, sessions: 2n, personas: 0n, apiConfigs: 20n, messagesPerDay: 10n },
      overrides: { sessions: 2n },
      usage: { storedBytes: 250n, sessions: 2n, personas: 9n, apiConfigs: 1n, messagesToday: 3n },
    });
    const rows = Object.fromEntries(quotaRows(quota).map((r) => [r.quota, r]));
    expect(rows.storedBytes).toMatchObject({ used: 250, limit: 1000, fraction: 0.25, full: false, overridden: false });
    expect(rows.sessions).toMatchObject({ full: true, overridden: true, fraction: 1 });
    expect(rows.personas).toMatchObject({ used: 9, limit: 0, full: false, fraction: 0 });
    expect(rows.messagesPerDay).toMatchObject({ used: 3, limit: 10 });
  });

  it("turns the override form into a masked update: empty clears, MiB become bytes", () => {
    const draft = overrideDraft(create(AccountQuotaSchema, { overrides: { storedBytes: 5n * 1024n * 1024n, sessions: 3n } }).overrides);
    expect(draft).toEqual({ storedBytes: "5", sessions: "3", personas: "", apiConfigs: "", messagesPerDay: "" });
    const update = overrideUpdate({ ...draft, sessions: "", messagesPerDay: "0", storedBytes: "1.5" });
    expect(update).toEqual({
      fields: { storedBytes: 1572864n, messagesPerDay: 0n },
      paths: ["stored_bytes", "sessions", "personas", "api_configs", "messages_per_day"],
    });
    expect(overrideUpdate({ ...draft, personas: "-1" })).toEqual({ invalid: "personas" });
    expect(overrideUpdate({ ...draft, sessions: "1.5" })).toEqual({ invalid: "sessions" });
  });
});
