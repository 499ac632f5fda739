// The bell in the navigation bar: the unread count of the user's notifications (live, from the
// rooms' one event stream) and, opened, the list: mark read, mark all read, open the room a
// notification is about. Administrators post announcements to everyone from here.
import { useEffect, useState } from "react";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { useLocale, useT, type MessageKey } from "../i18n";
import { Modal, PromptModal } from "../ui/Modal";
import { useToast } from "../ui/toast";
import { formatTime } from "../ui/time";
import { describeError } from "../ui/errorText";
import { Role } from "../gen/parley/user/v1/user_pb";
import { NotificationKind, RoomRole, type Notification } from "../gen/parley/chat/v1/room_pb";
import { useRooms, type RoomsStore } from "./roomsStore";
import { useRoomsStore } from "./RoomsSection";
import { useAccountName } from "./RoomView";

const roleText: Partial<Record<RoomRole, MessageKey>> = {
  [RoomRole.OWNER]: "roleOwner",
  [RoomRole.ADMIN]: "roleAdmin",
  [RoomRole.MEMBER]: "roleMember",
};

function BellIcon() {
  return (
    <svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" strokeLinecap="round" strokeLinejoin="round" />
      <path d="M13.73 21a2 2 0 0 1-3.46 0" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

export default function NotificationBell() {
  const t = useT();
  const store = useRoomsStore();
  const state = useRooms(store);
  const [open, setOpen] = useState(false);
  const unread = state.notifications.unread;
  const label = unread > 0 ? t("notificationsUnread", { count: unread }) : t("notifications");

  return (
    <>
      <button
        type="button"
        className="relative rounded p-1.5 hover:bg-[#ffffff1a]"
        onClick={() => setOpen(true)}
        aria-label={label}
        title={label}
        data-testid="notification-bell"
      >
        <BellIcon />
        {unread > 0 && (
          <span
            className="absolute -top-0.5 -right-0.5 min-w-4 rounded-full bg-red-600 px-1 text-center text-[10px] leading-4 font-semibold text-[#fff]"
            data-testid="notification-badge"
            aria-hidden="true"
          >
            {unread > 99 ? "99+" : unread}
          </span>
        )}
      </button>
      {open && <NotificationList store={store} onClose={() => setOpen(false)} />}
    </>
  );
}

function NotificationList({ store, onClose }: { store: RoomsStore; onClose: () => void }) {
  const t = useT();
  const toast = useToast();
  const { user } = useStore();
  const state = useRooms(store);
  const { items, unread, olderPageToken, loaded } = state.notifications;
  const [announcing, setAnnouncing] = useState(false);

  // Who acted, by name rather than account id.
  useEffect(() => {
    void store.loadProfiles(items.map((n) => n.actorAccountId));
  }, [store, items]);

  const markRead = async (ids: bigint[] | "all") => {
    try {
      await store.markNotificationsRead(ids);
    } catch (err) {
      toast(`${t("couldNotMarkRead")}: ${describeError(err, t)}`);
    }
  };

  const openOne = (n: Notification) => {
    if (!n.readAt) void markRead([n.id]);
    const inRoom = n.roomId > 0n && state.rooms.some((r) => r.id === n.roomId);
    if (inRoom && n.kind !== NotificationKind.REMOVED) {
      navigate({ name: "room", id: n.roomId.toString() });
      onClose();
    }
  };

  const announce = async (text: string) => {
    try {
      const res = await store.notificationsClient.postAnnouncement({ text });
      toast(t("announcementPosted", { count: Number(res.recipients) }));
    } catch (err) {
      toast(`${t("couldNotPostAnnouncement")}: ${describeError(err, t)}`);
    }
  };

  return (
    <Modal open title={t("notifications")} onClose={onClose}>
      <div className="mb-2 flex flex-wrap items-center justify-between gap-2">
        <p className="text-xs text-gray-600">{unread > 0 ? t("notificationsUnread", { count: unread }) : t("noUnreadNotifications")}</p>
        <div className="flex gap-2">
          {user.role === Role.ADMIN && (
            <button type="button" className="btn-secondary text-xs" onClick={() => setAnnouncing(true)}>
              {t("postAnnouncement")}
            </button>
          )}
          <button type="button" className="btn-secondary text-xs" disabled={unread === 0} onClick={() => void markRead("all")}>
            {t("markAllRead")}
          </button>
        </div>
      </div>
      <ul className="max-h-96 space-y-1 overflow-y-auto" aria-label={t("notifications")} data-testid="notification-list">
        {loaded && items.length === 0 && <li className="py-4 text-center text-sm text-gray-500">{t("noNotifications")}</li>}
        {items.map((n) => (
          <li key={n.id.toString()}>
            <NotificationItem notification={n} onOpen={() => openOne(n)} />
          </li>
        ))}
      </ul>
      {olderPageToken && (
        <button
          type="button"
          className="mt-2 text-xs text-gray-600 underline"
          onClick={() => void store.loadOlderNotifications().catch((err: unknown) => toast(describeError(err, t)))}
        >
          {t("olderNotifications")}
        </button>
      )}
      <div className="mt-4 flex justify-end">
        <button type="button" className="btn-secondary" onClick={onClose}>
          {t("close")}
        </button>
      </div>
      <PromptModal
        open={announcing}
        title={t("postAnnouncement")}
        label={t("announcementText")}
        initial=""
        saveLabel={t("postAnnouncement")}
        cancelLabel={t("cancel")}
        onSave={(text) => void announce(text)}
        onClose={() => setAnnouncing(false)}
      />
    </Modal>
  );
}

function NotificationItem({ notification: n, onOpen }: { notification: Notification; onOpen: () => void }) {
  const t = useT();
  const { locale } = useLocale();
  const accountName = useAccountName();
  const name = n.actorAccountId ? accountName(n.actorAccountId) : "";
  const room = n.roomName;
  const title = (() => {
    switch (n.kind) {
      case NotificationKind.MENTION:
        return t("notifyMention", { name, room });
      case NotificationKind.INVITATION:
        return t("notifyInvitation", { name, room });
      case NotificationKind.ROLE_CHANGED:
        return t("notifyRole", { name, room, role: t(roleText[n.role] ?? "roleMember") });
      case NotificationKind.REMOVED:
        return t(n.banned ? "notifyBanned" : "notifyKicked", { name, room });
      case NotificationKind.ANNOUNCEMENT:
        return t("notifyAnnouncement", { name });
      default:
        return t("notifications");
    }
  })();
  return (
    <button
      type="button"
      onClick={onOpen}
      className={`w-full rounded-lg px-3 py-2 text-left text-sm hover:bg-gray-100 ${n.readAt ? "text-gray-600" : "bg-gray-50 font-medium"}`}
      data-testid="notification"
      data-kind={NotificationKind[n.kind]?.toLowerCase()}
      data-unread={n.readAt ? undefined : "true"}
    >
      <span className="flex items-start gap-2">
        {!n.readAt && <span className="mt-1.5 h-2 w-2 shrink-0 rounded-full bg-red-600" aria-label={t("unread")} />}
        <span className="min-w-0 flex-1">
          <span className="block break-words">{title}</span>
          {n.text && <span className="mt-0.5 line-clamp-3 block font-normal break-words text-gray-700">{n.text}</span>}
          <span className="mt-0.5 block text-xs font-normal text-gray-500">{formatTime(n.createdAt, locale)}</span>
        </span>
      </span>
    </button>
  );
}
