import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SessionSchema } from "../gen/parley/chat/v1/session_pb";
import { groupSessions } from "./groups";

const now = new Date(2026, 10, 22, 15, 0, 0);
const at = (daysAgo: number, hour = 10) => new Date(2026, 10, 22 - daysAgo, hour, 0, 0);
const session = (id: number, when: Date, pinned = false) =>
  create(SessionSchema, { id: BigInt(id), pinned, lastActiveAt: timestampFromDate(when) });

describe("groupSessions", () => {
  it("puts pinned chats first, then groups by the day of last activity, keeping the order", () => {
    const groups = groupSessions(
      [session(1, at(30), true), session(2, at(0, 14)), session(3, at(0, 0)), session(4, at(1, 23)), session(5, at(6)), session(6, at(8))],
      now,
    );
    expect(groups.map((g) => [g.key, g.sessions.map((s) => Number(s.id))])).toEqual([
      ["pinned", [1]],
      ["today", [2, 3]],
      ["yesterday", [4]],
      ["previous7", [5]],
      ["older", [6]],
    ]);
  });

  it("leaves out empty sections", () => {
    expect(groupSessions([session(1, at(0))], now).map((g) => g.key)).toEqual(["today"]);
    expect(groupSessions([], now)).toEqual([]);
  });
});
