import { afterEach, describe, expect, it, vi } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { createApi } from "../api/client";
import {
  AuthorKind,
  RoomEventSchema,
  RoomMessageSchema,
  RoomRole,
  RoomSchema,
  RoomService,
  type RoomEvent,
  type WatchRoomEventsResponse,
} from "../gen/parley/chat/v1/room_pb";
import { RoomsStore } from "./roomsStore";

const bob = "acct-bob";
const posted = (eventId: number, messageId: number, content: string) =>
  create(RoomEventSchema, {
    id: BigInt(eventId),
    roomId: 1n,
    event: {
      case: "messagePosted",
      value: create(RoomMessageSchema, { id: BigInt(messageId), roomId: 1n, authorAccountId: bob, authorKind: AuthorKind.USER, content }),
    },
  });

/** A RoomService whose WatchRoomEvents plays one script per call (ending in an error: the
 * connection dropped), recording where each call asked to resume from. */
function roomService(scripts: { events: RoomEvent[]; drop: boolean }[]) {
  const resumedFrom: bigint[] = [];
  const api = createApi((interceptors) =>
    createRouterTransport(
      ({ service }) => {
        service(RoomService, {
          listMyRooms: () => ({ rooms: [create(RoomSchema, { id: 1n, name: "team", memberCount: 2n, myRole: RoomRole.OWNER })] }),
          listMyInvitations: () => ({ invitations: [] }),
          listRoomMessages: () => ({ messages: [], nextPageToken: "" }),
          async *watchRoomEvents(req, ctx): AsyncGenerator<WatchRoomEventsResponse> {
            resumedFrom.push(req.afterEventId);
            const script = scripts.shift();
            if (!script) {
              // The last call stays open until the test ends it.
              await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
              return;
            }
            for (const event of script.events) yield { $typeName: "parley.chat.v1.WatchRoomEventsResponse", event };
            if (script.drop) throw new ConnectError("connection reset", Code.Unavailable);
          },
        });
      },
      { transport: { interceptors } },
    ),
  );
  return { api, resumedFrom };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("rooms store", () => {
  it("resumes the one stream from the last event it saw, applying repeats once", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const { api, resumedFrom } = roomService([
      { events: [posted(5, 50, "one"), posted(6, 51, "two")], drop: true },
      // The server repeats an event the page already has: it is not applied twice.
      { events: [posted(6, 51, "two"), posted(7, 52, "three")], drop: true },
    ]);
    const store = new RoomsStore(api, "acct-alice");
    await store.loadMessages(1n);
    const release = store.retain();
    try {
      await vi.waitFor(() => expect(resumedFrom.length).toBe(1));
      await vi.waitFor(() => expect(store.snapshot.lastEventId).toBe(6n));
      // The retry waits a backoff; then it asks for what came after event 6.
      await vi.advanceTimersByTimeAsync(2000);
      await vi.waitFor(() => expect(resumedFrom.slice(0, 2)).toEqual([0n, 6n]));
      await vi.waitFor(() => expect(store.snapshot.lastEventId).toBe(7n));
      await vi.advanceTimersByTimeAsync(5000);
      await vi.waitFor(() => expect(resumedFrom).toEqual([0n, 6n, 7n]));
      expect(store.snapshot.timelines["1"].messages.map((m) => m.content)).toEqual(["one", "two", "three"]);
    } finally {
      release();
      store.stop();
    }
  });
});
