// What the page knows about the user's rooms, and how the one WatchRoomEvents stream changes
// it. Pure functions, so the folding of events (duplicates after a resume, edits, deletes, a
// member removed) is tested without a server.
import {
  AuthorKind,
  RoomRole,
  type Room,
  type RoomEvent,
  type RoomInvitation,
  type RoomMember,
  type RoomMessage,
} from "../gen/parley/chat/v1/room_pb";
import type { UserProfile } from "../gen/parley/user/v1/user_pb";
import { noNotifications, notificationArrived, type NotificationsState } from "./notifications";

/** Why a room went away while the page had it. */
export type LostReason = "left" | "kicked" | "banned" | "deleted";

/** A member change shown as a small line among the messages (chat-service stores none). */
export interface RoomNotice {
  eventId: bigint;
  /** The newest message before it, to place it in the list. */
  afterMessageId: bigint;
  kind: "joined" | "left" | "kicked" | "banned";
  accountId: string;
}

export interface RoomTimeline {
  /** Oldest first, each id once. */
  messages: RoomMessage[];
  notices: RoomNotice[];
  /** AI answers being written (their deltas are arriving). */
  streaming: string[];
  /** For the next older page; "" when the oldest message is loaded. */
  olderPageToken: string;
}

export interface RoomsState {
  /** The signed-in account (User.account_id). */
  me: string;
  /** The rooms the user is a member of, most recently active first. */
  rooms: Room[];
  /** Loaded message lists, by room id. */
  timelines: Record<string, RoomTimeline>;
  /** Loaded member lists, by room id. */
  members: Record<string, RoomMember[]>;
  invitations: RoomInvitation[];
  /** Rooms taken away while the page had them. */
  lost: Record<string, LostReason>;
  /** The newest stored event seen: where a reconnecting stream resumes. */
  lastEventId: bigint;
  /** The room on screen: its new messages are read, not unread. */
  viewing: string | null;
  /** Who else is typing, by room id: account id → until when (ms since the epoch). */
  typing: Record<string, Record<string, number>>;
  /** The bell's list, with new ones live. */
  notifications: NotificationsState;
  /** Usernames and display names of the accounts seen (chat-service knows only their ids). */
  profiles: Record<string, UserProfile>;
}

export function emptyRooms(me: string): RoomsState {
  return {
    me,
    rooms: [],
    timelines: {},
    members: {},
    invitations: [],
    lost: {},
    lastEventId: 0n,
    viewing: null,
    typing: {},
    notifications: noNotifications,
    profiles: {},
  };
}

const key = (id: bigint) => id.toString();

function replaceRoom(state: RoomsState, id: string, change: (room: Room) => Room): RoomsState {
  const rooms = state.rooms.map((r) => (key(r.id) === id ? change(r) : r));
  return { ...state, rooms };
}

function withoutRoom(state: RoomsState, id: string, reason: LostReason): RoomsState {
  const timelines = { ...state.timelines };
  const members = { ...state.members };
  delete timelines[id];
  delete members[id];
  return { ...state, rooms: state.rooms.filter((r) => key(r.id) !== id), timelines, members, lost: { ...state.lost, [id]: reason } };
}

/** Puts messages into a list kept oldest first with each id once; a later copy replaces an
 * earlier one unless `keepExisting` (a history page, which events may have overtaken). */
export function mergeMessages(list: RoomMessage[], incoming: RoomMessage[], keepExisting = false): RoomMessage[] {
  const byId = new Map(list.map((m) => [key(m.id), m]));
  for (const m of incoming) {
    if (keepExisting && byId.has(key(m.id))) continue;
    byId.set(key(m.id), m);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function updateTimeline(state: RoomsState, id: string, change: (timeline: RoomTimeline) => RoomTimeline): RoomsState {
  const timeline = state.timelines[id];
  if (!timeline) return state;
  return { ...state, timelines: { ...state.timelines, [id]: change(timeline) } };
}

function lastMessageId(timeline: RoomTimeline | undefined): bigint {
  return timeline?.messages.at(-1)?.id ?? 0n;
}

function addNotice(state: RoomsState, id: string, eventId: bigint, kind: RoomNotice["kind"], accountId: string): RoomsState {
  return updateTimeline(state, id, (t) =>
    t.notices.some((n) => n.eventId === eventId)
      ? t
      : { ...t, notices: [...t.notices, { eventId, afterMessageId: lastMessageId(t), kind, accountId }] },
  );
}

function changeMemberCount(state: RoomsState, id: string, by: number): RoomsState {
  return replaceRoom(state, id, (r) => ({ ...r, memberCount: r.memberCount + BigInt(by) }));
}

/** A new message moves its room to the top and, from someone else in a room not on screen,
 * counts as unread. */
function messageArrived(state: RoomsState, id: string, message: RoomMessage): RoomsState {
  const room = state.rooms.find((r) => key(r.id) === id);
  if (!room) return state;
  const fromOther = message.authorKind !== AuthorKind.SYSTEM && message.authorAccountId !== state.me;
  const unread = fromOther && state.viewing !== id ? room.unreadCount + 1n : room.unreadCount;
  const moved = { ...room, unreadCount: unread };
  return { ...state, rooms: [moved, ...state.rooms.filter((r) => r !== room)] };
}

function stoppedTyping(state: RoomsState, id: string, accountId: string): RoomsState {
  const room = state.typing[id];
  if (!room || !(accountId in room)) return state;
  const rest = { ...room };
  delete rest[accountId];
  return { ...state, typing: { ...state.typing, [id]: rest } };
}

/** The accounts typing in a room at `now` (ms), in a stable order. */
export function typingIn(state: RoomsState, roomId: string, now: number): string[] {
  return Object.entries(state.typing[roomId] ?? {})
    .filter(([, until]) => until > now)
    .map(([accountId]) => accountId)
    .sort();
}

/** Applies one event of the stream. Stored events (id > 0) already applied are ignored, so a
 * resumed stream that repeats some changes nothing twice. */
export function applyRoomEvent(state: RoomsState, event: RoomEvent): RoomsState {
  if (event.id > 0n) {
    if (event.id <= state.lastEventId) return state;
    state = { ...state, lastEventId: event.id };
  }
  const id = key(event.roomId);
  const e = event.event;
  switch (e.case) {
    case "messagePosted": {
      const next = updateTimeline(stoppedTyping(state, id, e.value.authorAccountId), id, (t) => ({
        ...t,
        messages: mergeMessages(t.messages, [e.value]),
      }));
      return messageArrived(next, id, e.value);
    }
    case "typing": {
      // Never stored (id 0): shown until `until`, renewed by the next one, ended by a post.
      const { accountId, until } = e.value;
      if (accountId === state.me || !until) return state;
      const ms = Number(until.seconds) * 1000 + Math.floor(until.nanos / 1e6);
      return { ...state, typing: { ...state.typing, [id]: { ...state.typing[id], [accountId]: ms } } };
    }
    case "messageEdited":
    case "messageDeleted":
      return updateTimeline(state, id, (t) => ({ ...t, messages: mergeMessages(t.messages, [e.value]) }));
    case "messageCompleted": {
      const done = key(e.value.id);
      return updateTimeline(state, id, (t) => ({
        ...t,
        messages: mergeMessages(t.messages, [e.value]),
        streaming: t.streaming.filter((s) => s !== done),
      }));
    }
    case "aiAnswerDelta": {
      const target = key(e.value.messageId);
      return updateTimeline(state, id, (t) => {
        const message = t.messages.find((m) => key(m.id) === target);
        if (!message) return t;
        return {
          ...t,
          messages: t.messages.map((m) => (m === message ? { ...m, content: m.content + e.value.text } : m)),
          streaming: t.streaming.includes(target) ? t.streaming : [...t.streaming, target],
        };
      });
    }
    case "memberJoined": {
      const member = e.value;
      let next = addNotice(state, id, event.id, "joined", member.accountId);
      if (member.accountId === state.me) {
        // Joined here or in another tab: the room is no longer lost (the store fetches it).
        const lost = { ...next.lost };
        delete lost[id];
        return { ...next, lost };
      }
      next = changeMemberCount(next, id, 1);
      const members = next.members[id];
      if (!members) return next;
      return { ...next, members: { ...next.members, [id]: [...members.filter((m) => m.accountId !== member.accountId), member] } };
    }
    case "memberLeft":
    case "memberRemoved": {
      const accountId = e.case === "memberLeft" ? e.value : e.value.accountId;
      const kind = e.case === "memberLeft" ? "left" : e.value.banned ? "banned" : "kicked";
      if (accountId === state.me) return withoutRoom(state, id, kind);
      let next = addNotice(state, id, event.id, kind, accountId);
      next = changeMemberCount(next, id, -1);
      const members = next.members[id];
      if (!members) return next;
      return { ...next, members: { ...next.members, [id]: members.filter((m) => m.accountId !== accountId) } };
    }
    case "memberUpdated": {
      const member = e.value;
      let next = state;
      if (member.accountId === state.me) next = replaceRoom(next, id, (r) => ({ ...r, myRole: member.role }));
      else if (member.role === RoomRole.OWNER) {
        // Ownership passed to them: the old owner's own update follows in its own event.
        next = replaceRoom(next, id, (r) => ({ ...r, ownerAccountId: member.accountId }));
      }
      const members = next.members[id];
      if (!members) return next;
      return { ...next, members: { ...next.members, [id]: members.map((m) => (m.accountId === member.accountId ? member : m)) } };
    }
    case "roomUpdated": {
      // The event is the same for every member: the caller's role and unread count stay ours.
      const room = e.value;
      return replaceRoom(state, id, (r) => ({ ...room, myRole: r.myRole, unreadCount: r.unreadCount }));
    }
    case "roomDeleted":
      return state.rooms.some((r) => key(r.id) === id) || state.timelines[id] ? withoutRoom(state, id, "deleted") : state;
    case "invited":
      return state.invitations.some((i) => i.id === e.value.id) ? state : { ...state, invitations: [...state.invitations, e.value] };
    case "notification":
      // Live only (id 0); the list is read again whenever the stream opens.
      return { ...state, notifications: notificationArrived(state.notifications, e.value) };
    case "messagesExpired": {
      // The room's retention deleted everything created before `before`.
      const before = e.value.before;
      if (!before) return state;
      return updateTimeline(state, id, (t) => ({
        ...t,
        messages: t.messages.filter((m) => !m.createdAt || m.createdAt.seconds > before.seconds ||
          (m.createdAt.seconds === before.seconds && m.createdAt.nanos >= before.nanos)),
      }));
    }
    case "memberRead": {
      // Live only: moves the member's read mark (what "Seen by" is made of).
      const { accountId, lastReadMessageId } = e.value;
      const members = state.members[id];
      if (!members) return state;
      return {
        ...state,
        members: {
          ...state.members,
          [id]: members.map((m) =>
            m.accountId === accountId && (m.lastReadMessageId ?? 0n) < lastReadMessageId ? { ...m, lastReadMessageId } : m,
          ),
        },
      };
    }
    case "reloadRequired":
      // The stream resumed from further back than the server keeps: what the page holds may
      // be stale. The store reads the rooms, their messages and members again.
      return { ...state, timelines: {}, members: {} };
    case undefined:
      return state;
  }
}

/** The rooms as ListMyRooms answered (rooms the user is in again are no longer lost). */
export function roomsLoaded(state: RoomsState, rooms: Room[]): RoomsState {
  const lost = { ...state.lost };
  for (const r of rooms) delete lost[key(r.id)];
  return { ...state, rooms, lost };
}

/** A room the user just joined, created or read again. */
export function roomChanged(state: RoomsState, room: Room): RoomsState {
  const id = key(room.id);
  const lost = { ...state.lost };
  delete lost[id];
  const exists = state.rooms.some((r) => key(r.id) === id);
  return { ...state, lost, rooms: exists ? state.rooms.map((r) => (key(r.id) === id ? room : r)) : [room, ...state.rooms] };
}

/** A page of ListRoomMessages (newest first, as the server sends it). A page read for history
 * keeps what events already changed; one read again after a gap in the stream (`fresh`) is
 * newer than what the page has, and replaces it. */
export function messagesLoaded(state: RoomsState, roomId: bigint, page: RoomMessage[], nextPageToken: string, fresh = false): RoomsState {
  const id = key(roomId);
  const timeline = state.timelines[id] ?? { messages: [], notices: [], streaming: [], olderPageToken: "" };
  return {
    ...state,
    timelines: {
      ...state.timelines,
      [id]: {
        ...timeline,
        messages: mergeMessages(timeline.messages, page, !fresh),
        olderPageToken: fresh && timeline.messages.length > 0 ? timeline.olderPageToken : nextPageToken,
      },
    },
  };
}

/** A message the user just posted or edited, as the server answered (its event may come later). */
export function messageStored(state: RoomsState, message: RoomMessage): RoomsState {
  return updateTimeline(state, key(message.roomId), (t) => ({ ...t, messages: mergeMessages(t.messages, [message]) }));
}

export function membersLoaded(state: RoomsState, roomId: bigint, members: RoomMember[]): RoomsState {
  return { ...state, members: { ...state.members, [key(roomId)]: members } };
}

export function viewingRoom(state: RoomsState, roomId: string | null): RoomsState {
  return state.viewing === roomId ? state : { ...state, viewing: roomId };
}

export function invitationAnswered(state: RoomsState, invitationId: bigint): RoomsState {
  return { ...state, invitations: state.invitations.filter((i) => i.id !== invitationId) };
}

/** The messages and notices of a room in the order they happened. */
export type TimelineItem = { kind: "message"; message: RoomMessage } | { kind: "notice"; notice: RoomNotice };

export function timelineItems(timeline: RoomTimeline): TimelineItem[] {
  const items: TimelineItem[] = [];
  const notices = [...timeline.notices];
  const flushUpTo = (id: bigint) => {
    while (notices.length > 0 && notices[0].afterMessageId <= id) items.push({ kind: "notice", notice: notices.shift() as RoomNotice });
  };
  for (const message of timeline.messages) {
    flushUpTo(message.id - 1n);
    items.push({ kind: "message", message });
  }
  flushUpTo(BigInt(Number.MAX_SAFE_INTEGER) * 1024n);
  return items;
}

/** The members other than the author (and the caller) who have read `message`: what "Seen by"
 * shows under it, in rooms small enough to show it. */
export function seenBy(state: RoomsState, room: Room, message: RoomMessage): string[] {
  if (!room.readReceipts) return [];
  return (state.members[key(room.id)] ?? [])
    .filter((m) => m.accountId !== state.me && m.accountId !== message.authorAccountId)
    .filter((m) => (m.lastReadMessageId ?? 0n) >= message.id)
    .map((m) => m.accountId);
}

/** Whether the role may manage members (invite, kick, mute) and the room's name and topic. */
export function canModerate(role: RoomRole): boolean {
  return role === RoomRole.OWNER || role === RoomRole.ADMIN;
}
