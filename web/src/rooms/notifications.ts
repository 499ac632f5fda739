// The signed-in user's notifications as the bell shows them: the newest page, kept current by
// the `notification` events of the one WatchRoomEvents stream. Pure, so it is tested without a
// server.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Notification } from "../gen/parley/chat/v1/room_pb";

export interface NotificationsState {
  /** Newest first, each id once. */
  items: Notification[];
  /** All unread ones, not only those loaded. */
  unread: number;
  /** For the next older page; "" when the oldest is loaded. */
  olderPageToken: string;
  loaded: boolean;
}

export const noNotifications: NotificationsState = { items: [], unread: 0, olderPageToken: "", loaded: false };

const byNewest = (a: Notification, b: Notification) => (a.id > b.id ? -1 : a.id < b.id ? 1 : 0);

/** A live one; a copy the list already has changes nothing. */
export function notificationArrived(state: NotificationsState, notification: Notification): NotificationsState {
  if (state.items.some((n) => n.id === notification.id)) return state;
  return {
    ...state,
    items: [notification, ...state.items].sort(byNewest),
    unread: state.unread + (notification.readAt ? 0 : 1),
  };
}

/** A page of ListNotifications: the first replaces the list, older ones are added. */
export function notificationsLoaded(
  state: NotificationsState,
  page: Notification[],
  unread: bigint,
  nextPageToken: string,
  older: boolean,
): NotificationsState {
  const items = older ? [...state.items, ...page.filter((n) => !state.items.some((m) => m.id === n.id))] : page;
  return { items: [...items].sort(byNewest), unread: Number(unread), olderPageToken: nextPageToken, loaded: true };
}

/** Marked read (the ids named, or all), with the unread count the server answered. */
export function notificationsRead(state: NotificationsState, ids: bigint[] | "all", unread: bigint, now: Date): NotificationsState {
  const readAt = timestampFromDate(now);
  const items = state.items.map((n) => (!n.readAt && (ids === "all" || ids.includes(n.id)) ? { ...n, readAt } : n));
  return { ...state, items, unread: Number(unread) };
}
