import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { NotificationKind, NotificationSchema } from "../gen/parley/chat/v1/room_pb";
import { noNotifications, notificationArrived, notificationsLoaded, notificationsRead } from "./notifications";

const note = (id: bigint) => create(NotificationSchema, { id, kind: NotificationKind.MENTION, roomId: 1n, text: `n${id}` });

describe("notifications", () => {
  it("adds live ones once, newest first, counting them unread", () => {
    let s = notificationsLoaded(noNotifications, [note(2n)], 1n, "", false);
    s = notificationArrived(s, note(3n));
    s = notificationArrived(s, note(3n));
    expect(s.items.map((n) => n.id)).toEqual([3n, 2n]);
    expect(s.unread).toBe(2);
  });

  it("adds older pages after the newest and replaces on a fresh load", () => {
    let s = notificationsLoaded(noNotifications, [note(5n), note(4n)], 5n, "next", false);
    s = notificationsLoaded(s, [note(4n), note(3n)], 5n, "", true);
    expect(s.items.map((n) => n.id)).toEqual([5n, 4n, 3n]);
    expect(s.olderPageToken).toBe("");
    s = notificationsLoaded(s, [note(6n)], 1n, "", false);
    expect(s.items.map((n) => n.id)).toEqual([6n]);
  });

  it("marks the named ones or all read", () => {
    let s = notificationsLoaded(noNotifications, [note(2n), note(1n)], 2n, "", false);
    s = notificationsRead(s, [2n], 1n, new Date());
    expect(s.items.map((n) => !!n.readAt)).toEqual([true, false]);
    expect(s.unread).toBe(1);
    s = notificationsRead(s, "all", 0n, new Date());
    expect(s.items.every((n) => n.readAt)).toBe(true);
    expect(s.unread).toBe(0);
  });
});
