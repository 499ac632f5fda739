// The rooms of the signed-in user, kept current by one WatchRoomEvents stream for all of them
// (browsers on HTTP/1.1 hold only six connections per origin). The stream runs while any rooms
// component is on screen and resumes from the last event it saw after a drop.
import { useEffect, useSyncExternalStore } from "react";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import type { Api } from "../api/client";
import { backoffMs } from "../auth/tokens";
import { RoomService, type Room, type RoomEvent, type RoomMessage } from "../gen/parley/chat/v1/room_pb";
import { NotificationService } from "../gen/parley/chat/v1/notification_pb";
import { notificationsLoaded, notificationsRead } from "./notifications";
import {
  applyRoomEvent,
  emptyRooms,
  invitationAnswered,
  membersLoaded,
  messagesLoaded,
  messageStored,
  roomChanged,
  roomsLoaded,
  viewingRoom,
  type RoomsState,
} from "./roomEvents";

export class RoomsStore {
  private state: RoomsState;
  private listeners = new Set<() => void>();
  private users = 0;
  private controller: AbortController | null = null;
  private stopTimer: number | undefined;
  loadError: unknown = null;

  readonly client: Client<typeof RoomService>;
  readonly notificationsClient: Client<typeof NotificationService>;
  /** Account ids being looked up, so each is asked for once. */
  private profilesAsked = new Set<string>();

  constructor(
    readonly api: Api,
    readonly me: string,
  ) {
    this.client = createClient(RoomService, api.transport);
    this.notificationsClient = createClient(NotificationService, api.transport);
    this.state = emptyRooms(me);
  }

  get snapshot(): RoomsState {
    return this.state;
  }

  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(next: RoomsState) {
    if (next === this.state) return;
    this.state = next;
    for (const l of this.listeners) l();
  }

  update(change: (state: RoomsState) => RoomsState) {
    this.set(change(this.state));
  }

  /** A component that shows rooms is on screen; the returned function says it left. Between
   * two of them (a route change) the stream is kept for a moment rather than reopened. */
  retain(): () => void {
    this.users++;
    window.clearTimeout(this.stopTimer);
    if (!this.controller) this.start();
    return () => {
      this.users--;
      if (this.users === 0) this.stopTimer = window.setTimeout(() => this.stop(), 5000);
    };
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  private start() {
    const controller = new AbortController();
    this.controller = controller;
    void this.run(controller.signal);
  }

  async reloadRooms() {
    try {
      const [rooms, invitations] = await Promise.all([this.client.listMyRooms({}), this.client.listMyInvitations({})]);
      this.loadError = null;
      this.update((s) => ({ ...roomsLoaded(s, rooms.rooms), invitations: invitations.invitations }));
    } catch (err) {
      this.loadError = err;
      this.set({ ...this.state });
    }
  }

  private async run(signal: AbortSignal) {
    let failures = 0;
    let firstOpen = true;
    while (!signal.aborted) {
      const resumeFrom = this.state.lastEventId;
      try {
        const stream = this.client.watchRoomEvents({ afterEventId: resumeFrom }, { signal });
        // The lists are read once the stream is asked for, so nothing between them is missed;
        // a resumed stream replays what happened meanwhile, a fresh one needs the lists again.
        if (firstOpen || resumeFrom === 0n) void this.reloadRooms();
        // Notifications are sent live only: what came while the stream was away is read.
        void this.reloadNotifications();
        // Dropped before any stored event came: what the open rooms missed is read again.
        if (!firstOpen && resumeFrom === 0n) {
          for (const id of Object.keys(this.state.timelines)) void this.loadMessages(BigInt(id), "", true).catch(() => {});
        }
        firstOpen = false;
        for await (const res of stream) {
          failures = 0;
          if (res.event) this.apply(res.event);
        }
        if (signal.aborted) return;
      } catch (err) {
        if (signal.aborted) return;
        if (ConnectError.from(err).code === Code.Unauthenticated) await this.api.tokens.refresh().catch(() => null);
      }
      // Ended or dropped: again after a pause that grows with each failure.
      await new Promise((resolve) => window.setTimeout(resolve, backoffMs(failures++)));
    }
  }

  /** Applies an event; a room the user joined elsewhere (another tab, an invitation accepted)
   * is read to show it. */
  private apply(event: RoomEvent) {
    const before = this.state;
    this.set(applyRoomEvent(before, event));
    const e = event.event;
    if (e.case === "reloadRequired") {
      void this.reloadRooms();
      for (const id of Object.keys(before.timelines)) void this.loadMessages(BigInt(id)).catch(() => {});
      for (const id of Object.keys(before.members)) void this.loadMembers(BigInt(id)).catch(() => {});
      return;
    }
    const joinedElsewhere =
      e.case === "memberJoined" &&
      e.value.accountId === this.me &&
      this.state !== before &&
      !before.rooms.some((r) => r.id === event.roomId);
    if (joinedElsewhere) void this.fetchRoom(event.roomId);
  }

  async fetchRoom(roomId: bigint) {
    try {
      const res = await this.client.getRoom({ roomId });
      if (res.room) this.roomChanged(res.room);
    } catch {
      // Not a member (any more): nothing to show.
    }
  }

  roomChanged(room: Room) {
    this.update((s) => roomChanged(s, room));
  }

  /** The newest page (or the one `pageToken` names); `fresh` after a gap in the stream. */
  async loadMessages(roomId: bigint, pageToken = "", fresh = false) {
    const res = await this.client.listRoomMessages({ roomId, pageSize: 50, pageToken });
    this.update((s) => messagesLoaded(s, roomId, res.messages, res.nextPageToken, fresh));
  }

  async loadMembers(roomId: bigint) {
    const res = await this.client.listMembers({ roomId });
    this.update((s) => membersLoaded(s, roomId, res.members));
  }

  messageStored(message: RoomMessage) {
    this.update((s) => messageStored(s, message));
  }

  setViewing(roomId: string | null) {
    this.update((s) => viewingRoom(s, roomId));
  }

  async reloadNotifications() {
    try {
      const res = await this.notificationsClient.listNotifications({ pageSize: 30 });
      this.update((s) => ({
        ...s,
        notifications: notificationsLoaded(s.notifications, res.notifications, res.unreadCount, res.nextPageToken, false),
      }));
    } catch {
      // The bell keeps what it had; the next stream opening reads again.
    }
  }

  async loadOlderNotifications() {
    const token = this.state.notifications.olderPageToken;
    if (!token) return;
    const res = await this.notificationsClient.listNotifications({ pageSize: 30, pageToken: token });
    this.update((s) => ({
      ...s,
      notifications: notificationsLoaded(s.notifications, res.notifications, res.unreadCount, res.nextPageToken, true),
    }));
  }

  async markNotificationsRead(ids: bigint[] | "all") {
    const res = await this.notificationsClient.markNotificationsRead(
      ids === "all" ? { all: true } : { notificationIds: ids },
    );
    this.update((s) => ({ ...s, notifications: notificationsRead(s.notifications, ids, res.unreadCount, new Date()) }));
  }

  /** Reads the usernames of accounts not known yet (members, authors, actors). */
  async loadProfiles(accountIds: string[]) {
    const wanted = [...new Set(accountIds)].filter((id) => id && !this.profilesAsked.has(id));
    if (wanted.length === 0) return;
    for (const id of wanted) this.profilesAsked.add(id);
    try {
      for (let i = 0; i < wanted.length; i += 100) {
        const res = await this.api.users.lookupUsers({ accountIds: wanted.slice(i, i + 100) });
        this.update((s) => {
          const profiles = { ...s.profiles };
          for (const p of res.users) profiles[p.accountId] = p;
          return { ...s, profiles };
        });
      }
    } catch {
      // Asked again next time they are needed.
      for (const id of wanted) this.profilesAsked.delete(id);
    }
  }

  invitationAnswered(invitationId: bigint) {
    this.update((s) => invitationAnswered(s, invitationId));
  }
}

let current: RoomsStore | null = null;

/** The store of the signed-in account (a new one after a switch of account). */
export function roomsStoreFor(api: Api, me: string): RoomsStore {
  if (!current || current.api !== api || current.me !== me) {
    current?.stop();
    current = new RoomsStore(api, me);
  }
  return current;
}

/** The rooms state, with the stream running while the calling component is mounted. */
export function useRooms(store: RoomsStore): RoomsState {
  useEffect(() => store.retain(), [store]);
  return useSyncExternalStore(store.subscribe, () => store.snapshot);
}
