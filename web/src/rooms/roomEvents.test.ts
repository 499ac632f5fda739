import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import {
  AuthorKind,
  MemberRemovedSchema,
  RoomEventSchema,
  RoomMemberSchema,
  RoomMessageSchema,
  RoomMessageType,
  RoomRole,
  MemberReadSchema,
  MessagesExpiredSchema,
  ReloadRequiredSchema,
  RoomSchema,
  TypingSchema,
  type RoomEvent,
} from "../gen/parley/chat/v1/room_pb";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  applyRoomEvent,
  emptyRooms,
  membersLoaded,
  messagesLoaded,
  roomsLoaded,
  seenBy,
  timelineItems,
  typingIn,
  viewingRoom,
  type RoomsState,
} from "./roomEvents";

const me = "acct-alice";
const bob = "acct-bob";
const room = (id: bigint, fields: Partial<{ name: string; memberCount: bigint; unreadCount: bigint; myRole: RoomRole }> = {}) =>
  create(RoomSchema, { id, name: `room ${id}`, memberCount: 2n, myRole: RoomRole.OWNER, ...fields });
const message = (id: bigint, author: string, content: string, roomId = 1n, fields: object = {}) =>
  create(RoomMessageSchema, {
    id,
    roomId,
    authorAccountId: author,
    authorKind: AuthorKind.USER,
    type: RoomMessageType.TEXT,
    content,
    ...fields,
  });
const event = (id: bigint, roomId: bigint, e: RoomEvent["event"]) => create(RoomEventSchema, { id, roomId, event: e });
const posted = (id: bigint, m: ReturnType<typeof message>) => event(id, m.roomId, { case: "messagePosted", value: m });

/** Two rooms, room 1's history loaded with one message, its members loaded. */
function start(): RoomsState {
  let s = roomsLoaded(emptyRooms(me), [room(1n), room(2n)]);
  s = messagesLoaded(s, 1n, [message(10n, me, "hello")], "");
  s = membersLoaded(s, 1n, [
    create(RoomMemberSchema, { roomId: 1n, accountId: me, role: RoomRole.OWNER }),
    create(RoomMemberSchema, { roomId: 1n, accountId: bob, role: RoomRole.MEMBER }),
  ]);
  return s;
}

const fold = (s: RoomsState, events: RoomEvent[]) => events.reduce(applyRoomEvent, s);
const contents = (s: RoomsState, roomId = "1") => s.timelines[roomId].messages.map((m) => m.content);

describe("room events", () => {
  it("applies each stored event once, however often a resumed stream repeats it", () => {
    const events = [posted(100n, message(11n, bob, "hi alice")), posted(101n, message(12n, bob, "are you there?"))];
    const once = fold(start(), events);
    // The stream dropped after the first event and resumed from it: both come again.
    const again = fold(once, [...events, posted(102n, message(13n, me, "yes"))]);
    expect(contents(again)).toEqual(["hello", "hi alice", "are you there?", "yes"]);
    expect(again.lastEventId).toBe(102n);
    // Others' messages in a room not on screen count as unread, each once; one's own do not.
    expect(again.rooms[0].unreadCount).toBe(2n);
    // The room with the news moves to the top.
    expect(again.rooms.map((r) => r.id)).toEqual([1n, 2n]);
    const other = applyRoomEvent(again, posted(103n, message(1n, bob, "other room", 2n)));
    expect(other.rooms.map((r) => r.id)).toEqual([2n, 1n]);
  });

  it("counts nothing as unread in the room on screen", () => {
    const s = fold(viewingRoom(start(), "1"), [posted(100n, message(11n, bob, "seen at once"))]);
    expect(s.rooms.find((r) => r.id === 1n)?.unreadCount).toBe(0n);
  });

  it("replaces edited messages and empties deleted ones, in place", () => {
    const edited = message(10n, me, "hello, edited", 1n, { editedAt: timestampFromMs(2000) });
    const deleted = message(11n, bob, "", 1n, { deletedAt: timestampFromMs(3000) });
    const s = fold(start(), [
      posted(100n, message(11n, bob, "oops")),
      event(101n, 1n, { case: "messageEdited", value: edited }),
      event(102n, 1n, { case: "messageDeleted", value: deleted }),
    ]);
    expect(contents(s)).toEqual(["hello, edited", ""]);
    expect(s.timelines["1"].messages[0].editedAt).toBeDefined();
    expect(s.timelines["1"].messages[1].deletedAt).toBeDefined();
  });

  it("does not let an older history page undo what events already changed", () => {
    const edited = message(10n, me, "newer text", 1n, { editedAt: timestampFromMs(2000) });
    let s = applyRoomEvent(start(), event(100n, 1n, { case: "messageEdited", value: edited }));
    s = messagesLoaded(s, 1n, [message(10n, me, "hello"), message(9n, bob, "older")], "");
    expect(contents(s)).toEqual(["older", "newer text"]);
    // Read again after a gap in the stream, the page is the newer one.
    s = messagesLoaded(s, 1n, [message(10n, me, "edited during the gap")], "", true);
    expect(contents(s)).toEqual(["older", "edited during the gap"]);
  });

  it("streams an AI answer from its deltas, then takes the finished text", () => {
    const ai = message(11n, "", "", 1n, { authorKind: AuthorKind.AI, type: RoomMessageType.AI_ANSWER });
    const delta = (text: string) =>
      event(0n, 1n, { case: "aiAnswerDelta", value: { $typeName: "parley.chat.v1.AiAnswerDelta", messageId: 11n, text } });
    let s = fold(start(), [posted(100n, ai), delta("Hel"), delta("lo")]);
    expect(contents(s)).toEqual(["hello", "Hello"]);
    expect(s.timelines["1"].streaming).toEqual(["11"]);
    // Deltas are never stored: they do not move the resume point.
    expect(s.lastEventId).toBe(100n);
    s = applyRoomEvent(s, event(101n, 1n, { case: "messageCompleted", value: { ...ai, content: "Hello there." } }));
    expect(contents(s)).toEqual(["hello", "Hello there."]);
    expect(s.timelines["1"].streaming).toEqual([]);
  });

  it("shows others joining and being removed, and updates the members and their count", () => {
    const carol = create(RoomMemberSchema, { roomId: 1n, accountId: "acct-carol", role: RoomRole.MEMBER });
    const s = fold(start(), [
      event(100n, 1n, { case: "memberJoined", value: carol }),
      posted(101n, message(11n, "acct-carol", "hi all")),
      event(102n, 1n, { case: "memberRemoved", value: create(MemberRemovedSchema, { accountId: bob, byAccountId: me }) }),
      event(103n, 1n, { case: "memberLeft", value: "acct-carol" }),
    ]);
    expect(s.members["1"].map((m) => m.accountId)).toEqual([me]);
    expect(s.rooms.find((r) => r.id === 1n)?.memberCount).toBe(1n);
    const items = timelineItems(s.timelines["1"]).map((i) =>
      i.kind === "message" ? i.message.content : `${i.notice.kind}:${i.notice.accountId}`,
    );
    expect(items).toEqual(["hello", "joined:acct-carol", "hi all", "kicked:acct-bob", "left:acct-carol"]);
  });

  it("takes the room away at once when the user is kicked, banned or the room deleted", () => {
    const kickedMe = create(MemberRemovedSchema, { accountId: me, byAccountId: bob });
    let s = applyRoomEvent(start(), event(100n, 1n, { case: "memberRemoved", value: kickedMe }));
    expect(s.rooms.map((r) => r.id)).toEqual([2n]);
    expect(s.timelines["1"]).toBeUndefined();
    expect(s.members["1"]).toBeUndefined();
    expect(s.lost["1"]).toBe("kicked");
    // Messages for it that were already on the way show nowhere.
    s = applyRoomEvent(s, posted(101n, message(11n, bob, "after the kick")));
    expect(s.timelines["1"]).toBeUndefined();
    expect(s.rooms.map((r) => r.id)).toEqual([2n]);

    const banned = applyRoomEvent(start(), event(100n, 1n, { case: "memberRemoved", value: { ...kickedMe, banned: true } }));
    expect(banned.lost["1"]).toBe("banned");
    const deleted = applyRoomEvent(start(), event(100n, 2n, { case: "roomDeleted", value: 2n }));
    expect(deleted.rooms.map((r) => r.id)).toEqual([1n]);
    expect(deleted.lost["2"]).toBe("deleted");
    // Joining it again (another tab, a new invitation) gives it back.
    const rejoined = applyRoomEvent(
      s,
      event(102n, 1n, { case: "memberJoined", value: create(RoomMemberSchema, { roomId: 1n, accountId: me }) }),
    );
    expect(rejoined.lost["1"]).toBeUndefined();
  });

  it("keeps the caller's role and unread count through a room update, and follows role changes", () => {
    let s = roomsLoaded(emptyRooms(me), [room(1n, { unreadCount: 3n, myRole: RoomRole.ADMIN })]);
    s = applyRoomEvent(s, event(100n, 1n, { case: "roomUpdated", value: room(1n, { name: "renamed", myRole: RoomRole.UNSPECIFIED }) }));
    expect(s.rooms[0]).toMatchObject({ name: "renamed", unreadCount: 3n, myRole: RoomRole.ADMIN });
    s = applyRoomEvent(
      s,
      event(101n, 1n, { case: "memberUpdated", value: create(RoomMemberSchema, { roomId: 1n, accountId: me, role: RoomRole.MEMBER }) }),
    );
    expect(s.rooms[0].myRole).toBe(RoomRole.MEMBER);
  });
});

describe("typing", () => {
  it("shows others typing until their time runs out or they post, never oneself, and moves no event id", () => {
    let state = roomsLoaded(emptyRooms(me), [room(1n)]);
    state = messagesLoaded(state, 1n, [], "");
    state = applyRoomEvent(state, event(5n, 1n, { case: "messagePosted", value: message(10n, me, "hi") }));
    const typing = (who: string, untilMs: number) =>
      event(0n, 1n, { case: "typing", value: create(TypingSchema, { accountId: who, until: timestampFromMs(untilMs) }) });
    state = applyRoomEvent(state, typing(bob, 10_000));
    state = applyRoomEvent(state, typing(me, 10_000));
    expect(typingIn(state, "1", 5_000)).toEqual([bob]);
    expect(typingIn(state, "1", 10_001)).toEqual([]);
    expect(typingIn(state, "2", 5_000)).toEqual([]);
    expect(state.lastEventId).toBe(5n);
    state = applyRoomEvent(state, event(6n, 1n, { case: "messagePosted", value: message(11n, bob, "done") }));
    expect(typingIn(state, "1", 5_000)).toEqual([]);
  });

  it("drops what a room's retention deleted", () => {
    let s = start();
    s = messagesLoaded(s, 1n, [message(9n, bob, "old", 1n, { createdAt: timestampFromMs(1_000) })], "");
    s = messagesLoaded(s, 1n, [message(11n, bob, "new", 1n, { createdAt: timestampFromMs(5_000) })], "");
    s = applyRoomEvent(s, event(20n, 1n, { case: "messagesExpired", value: create(MessagesExpiredSchema, { before: timestampFromMs(3_000) }) }));
    expect(contents(s)).toEqual(["hello", "new"]);
  });

  it("shows who has read the latest message, in rooms that show it, moved live", () => {
    let s = roomsLoaded(start(), [room(1n, { memberCount: 2n }), room(2n)]);
    const small = { ...s.rooms[0], readReceipts: true };
    const latest = message(10n, me, "hello");
    expect(seenBy(s, small, latest)).toEqual([]);
    const read = (id: bigint) => event(0n, 1n, { case: "memberRead", value: create(MemberReadSchema, { accountId: bob, lastReadMessageId: id }) });
    s = applyRoomEvent(s, read(10n));
    expect(seenBy(s, small, latest)).toEqual([bob]);
    // Marks never move back; rooms too big to show it show nobody.
    s = applyRoomEvent(s, read(5n));
    expect(seenBy(s, small, latest)).toEqual([bob]);
    expect(seenBy(s, { ...small, readReceipts: false }, latest)).toEqual([]);
    // Nobody is shown as a reader of their own message.
    expect(seenBy(s, small, message(10n, bob, "hello"))).toEqual([]);
  });

  it("forgets the loaded messages and members when told to reload", () => {
    const s = applyRoomEvent(start(), event(30n, 0n, { case: "reloadRequired", value: create(ReloadRequiredSchema, {}) }));
    expect(s.timelines).toEqual({});
    expect(s.members).toEqual({});
    expect(s.lastEventId).toBe(30n);
    expect(s.rooms.length).toBe(2);
  });
});
