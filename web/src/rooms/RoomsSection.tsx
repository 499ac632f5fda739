// The sidebar's "Rooms": the user's rooms with unread counts, invitations to answer, and the
// dialogs to create a room, browse public ones and join with an invite code.
import { useEffect, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { navigate, routePath, useRoute } from "../app/router";
import { useT } from "../i18n";
import { Modal } from "../ui/Modal";
import { Menu } from "../ui/Menu";
import { PlusIcon } from "../ui/icons";
import { useToast } from "../ui/toast";
import { copyText } from "../ui/clipboard";
import { describeError } from "../ui/errorText";
import { RoomVisibility, type Room } from "../gen/parley/chat/v1/room_pb";
import { roomsStoreFor, useRooms, type RoomsStore } from "./roomsStore";

export function useRoomsStore(): RoomsStore {
  const { api, user } = useStore();
  return roomsStoreFor(api, user.accountId);
}

/** The code of an invite link pasted whole, or the code itself. */
export function inviteCodeOf(text: string): string {
  const trimmed = text.trim();
  const link = /\/rooms\/join\/([^/?#\s]+)/.exec(trimmed);
  return link ? decodeURIComponent(link[1]) : trimmed;
}

export default function RoomsSection() {
  const t = useT();
  const toast = useToast();
  const store = useRoomsStore();
  const state = useRooms(store);
  const route = useRoute();
  const [dialog, setDialog] = useState<"create" | "browse" | "code" | null>(null);

  const answer = async (invitationId: bigint, accept: boolean) => {
    try {
      const res = await store.client.respondToInvitation({ invitationId, accept });
      store.invitationAnswered(invitationId);
      if (res.room) {
        store.roomChanged(res.room);
        navigate({ name: "room", id: res.room.id.toString() });
      }
    } catch (err) {
      toast(`${t("couldNotAnswerInvitation")}: ${describeError(err, t)}`);
    }
  };

  return (
    <section aria-labelledby="rooms-heading" className="mb-4" data-testid="rooms-section">
      <div className="flex items-center justify-between px-2 pb-1">
        <h3 id="rooms-heading" className="text-xs font-semibold text-gray-500">
          {t("rooms")}
        </h3>
        <Menu
          label={t("roomActions")}
          align="right"
          buttonClassName="btn-ghost"
          button={<PlusIcon width={14} height={14} />}
          items={[
            { label: t("createRoom"), onSelect: () => setDialog("create") },
            { label: t("browseRooms"), onSelect: () => setDialog("browse") },
            { label: t("joinWithCode"), onSelect: () => setDialog("code") },
            {
              label: t("copyMyAccountId"),
              onSelect: () => void copyText(store.me).then((ok) => ok && toast(t("copied"))),
            },
          ]}
        />
      </div>
      {state.invitations.length > 0 && (
        <ul className="mb-1 space-y-1" aria-label={t("roomInvitations")}>
          {state.invitations.map((i) => (
            <li key={i.id.toString()} className="rounded-lg bg-white px-2 py-1.5 text-sm shadow-xs" data-testid="room-invitation">
              <p className="truncate">{t("invitedTo", { room: i.roomName })}</p>
              <div className="mt-1 flex gap-2 text-xs">
                <button type="button" className="font-medium underline" onClick={() => void answer(i.id, true)}>
                  {t("accept")}
                </button>
                <button type="button" className="text-gray-600 underline" onClick={() => void answer(i.id, false)}>
                  {t("decline")}
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      {store.loadError !== null && state.rooms.length === 0 ? (
        <p role="alert" className="px-2 text-xs text-red-700">
          {t("roomsLoadFailed")}: {describeError(store.loadError, t)}{" "}
          <button type="button" className="underline" onClick={() => void store.reloadRooms()}>
            {t("retry")}
          </button>
        </p>
      ) : state.rooms.length === 0 ? (
        <p className="px-2 text-xs text-gray-500">{t("noRooms")}</p>
      ) : (
        <ul className="space-y-0.5" data-testid="room-list">
          {state.rooms.map((room) => (
            <RoomListItem key={room.id.toString()} room={room} active={route.name === "room" && route.id === room.id.toString()} />
          ))}
        </ul>
      )}
      {dialog === "create" && <CreateRoomDialog store={store} onClose={() => setDialog(null)} />}
      {dialog === "browse" && <BrowseRoomsDialog store={store} onClose={() => setDialog(null)} />}
      {dialog === "code" && <JoinCodeDialog store={store} onClose={() => setDialog(null)} />}
    </section>
  );
}

function RoomListItem({ room, active }: { room: Room; active: boolean }) {
  const t = useT();
  const id = room.id.toString();
  const unread = Number(room.unreadCount);
  return (
    <li className={`rounded-lg ${active ? "bg-gray-300/70" : "hover:bg-gray-200"}`}>
      <a
        href={routePath({ name: "room", id })}
        aria-current={active ? "page" : undefined}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          navigate({ name: "room", id });
        }}
        className="flex items-center gap-1.5 px-2 py-2 text-sm"
        title={room.name}
      >
        <span aria-hidden="true" className="text-gray-500">
          #
        </span>
        <span className="min-w-0 flex-1 truncate" data-testid="room-name">
          {room.name}
        </span>
        {unread > 0 && !active && (
          <span
            className="rounded-full bg-gray-900 px-1.5 text-xs font-semibold text-white"
            data-testid="room-unread"
            aria-label={t("unreadCount", { count: unread })}
          >
            {unread > 99 ? "99+" : unread}
          </span>
        )}
      </a>
    </li>
  );
}

function CreateRoomDialog({ store, onClose }: { store: RoomsStore; onClose: () => void }) {
  const t = useT();
  const [name, setName] = useState("");
  const [topic, setTopic] = useState("");
  const [isPublic, setIsPublic] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const visibility = isPublic ? RoomVisibility.PUBLIC : RoomVisibility.PRIVATE;
      const res = await store.client.createRoom({ name: name.trim(), topic: topic.trim(), visibility });
      if (res.room) {
        store.roomChanged(res.room);
        navigate({ name: "room", id: res.room.id.toString() });
      }
      setName("");
      setTopic("");
      onClose();
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal open title={t("createRoom")} onClose={onClose}>
      <form onSubmit={(e) => void submit(e)} className="space-y-3">
        <label className="block text-sm">
          {t("roomName")}
          <input className="input mt-1" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} autoFocus />
        </label>
        <label className="block text-sm">
          {t("roomTopic")}
          <input className="input mt-1" value={topic} onChange={(e) => setTopic(e.target.value)} maxLength={500} />
        </label>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={isPublic} onChange={(e) => setIsPublic(e.target.checked)} />
          {t("roomPublicLabel")}
        </label>
        {error && (
          <p role="alert" className="alert-error">
            {error}
          </p>
        )}
        <div className="flex justify-end gap-2">
          <button type="button" className="btn-secondary" onClick={onClose}>
            {t("cancel")}
          </button>
          <button type="submit" className="btn-primary" disabled={busy || !name.trim()}>
            {t("create")}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function BrowseRoomsDialog({ store, onClose }: { store: RoomsStore; onClose: () => void }) {
  const t = useT();
  const [query, setQuery] = useState("");
  const [found, setFound] = useState<Room[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    // Searches as one types, after a short pause.
    const timer = window.setTimeout(() => {
      store.client.searchPublicRooms({ query: query.trim(), pageSize: 50 }).then(
        (res) => {
          if (cancelled) return;
          setFound(res.rooms);
          setError(null);
        },
        (err: unknown) => {
          if (!cancelled) setError(describeError(err, t));
        },
      );
    }, 250);
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [query, store, t]);

  const join = async (room: Room) => {
    const mine = store.snapshot.rooms.some((r) => r.id === room.id);
    try {
      if (!mine) {
        const res = await store.client.joinRoom({ roomId: room.id });
        if (res.room) store.roomChanged(res.room);
      }
      navigate({ name: "room", id: room.id.toString() });
      onClose();
    } catch (err) {
      setError(describeError(err, t));
    }
  };

  return (
    <Modal open title={t("browseRooms")} onClose={onClose}>
      <label className="block text-sm">
        {t("searchRooms")}
        <input className="input mt-1" type="search" value={query} onChange={(e) => setQuery(e.target.value)} autoFocus />
      </label>
      {error && (
        <p role="alert" className="alert-error mt-3">
          {error}
        </p>
      )}
      <ul className="mt-3 max-h-80 space-y-2 overflow-y-auto" data-testid="public-rooms">
        {found?.length === 0 && <li className="text-sm text-gray-500">{t("noPublicRooms")}</li>}
        {found?.map((room) => {
          const mine = store.snapshot.rooms.some((r) => r.id === room.id);
          return (
            <li key={room.id.toString()} className="flex items-center gap-2 rounded-lg border border-gray-200 p-2 text-sm">
              <div className="min-w-0 flex-1">
                <p className="truncate font-medium">{room.name}</p>
                {room.topic && <p className="truncate text-xs text-gray-600">{room.topic}</p>}
                <p className="text-xs text-gray-500">{t("memberCount", { count: Number(room.memberCount) })}</p>
              </div>
              <button type="button" className="btn-secondary" onClick={() => void join(room)}>
                {mine ? t("open") : t("join")}
              </button>
            </li>
          );
        })}
      </ul>
      <div className="mt-4 flex justify-end">
        <button type="button" className="btn-secondary" onClick={onClose}>
          {t("close")}
        </button>
      </div>
    </Modal>
  );
}

function JoinCodeDialog({ store, onClose }: { store: RoomsStore; onClose: () => void }) {
  const t = useT();
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const res = await store.client.joinByInviteCode({ code: inviteCodeOf(code) });
      if (res.room) {
        store.roomChanged(res.room);
        navigate({ name: "room", id: res.room.id.toString() });
      }
      setCode("");
      setError(null);
      onClose();
    } catch (err) {
      setError(describeError(err, t));
    }
  };

  return (
    <Modal open title={t("joinWithCode")} onClose={onClose}>
      <form onSubmit={(e) => void submit(e)} className="space-y-3">
        <label className="block text-sm">
          {t("inviteCodeOrLink")}
          <input className="input mt-1" value={code} onChange={(e) => setCode(e.target.value)} required autoFocus />
        </label>
        {error && (
          <p role="alert" className="alert-error">
            {error}
          </p>
        )}
        <div className="flex justify-end gap-2">
          <button type="button" className="btn-secondary" onClick={onClose}>
            {t("cancel")}
          </button>
          <button type="submit" className="btn-primary" disabled={!code.trim()}>
            {t("join")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
