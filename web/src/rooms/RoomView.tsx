// A room: its messages (live), the composer, the members panel and the room's settings.
import { memo, useCallback, useEffect, useRef, useState, type KeyboardEvent } from "react";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { useLocale, useT, type MessageKey } from "../i18n";
import { ChatHeader } from "../chat/ChatView";
import { Composer } from "../chat/Composer";
import { useStickToBottom } from "../chat/useStickToBottom";
import { Markdown } from "../markdown/Markdown";
import { Avatar } from "../ui/Avatar";
import { ConfirmModal } from "../ui/Modal";
import { EditIcon, TrashIcon } from "../ui/icons";
import { useToast } from "../ui/toast";
import { formatTime } from "../ui/time";
import { describeError } from "../ui/errorText";
import { AuthorKind, RoomMessageType, type Room, type RoomMessage } from "../gen/parley/chat/v1/room_pb";
import { MessageStatus } from "../gen/parley/chat/v1/message_pb";
import { canModerate, seenBy, timelineItems, typingIn, type LostReason, type RoomNotice } from "./roomEvents";
import { useRooms, type RoomsStore } from "./roomsStore";
import { useRoomsStore } from "./RoomsSection";
import { MembersPanel } from "./MembersPanel";
import { insertMention, mentionAt, mentionSuggestions, type MentionCandidate } from "./mentions";
import { RoomSettingsDialog } from "./RoomSettingsDialog";

const lostText: Record<LostReason, MessageKey> = {
  left: "roomLostLeft",
  kicked: "roomLostKicked",
  banned: "roomLostBanned",
  deleted: "roomLostDeleted",
};

/** An account as the room shows it: chat-service knows accounts by id only, so names come
 * from user-service's profiles (a short id until they are read). */
export function useAccountName() {
  const t = useT();
  const { user } = useStore();
  const profiles = useRooms(useRoomsStore()).profiles;
  const me = user.accountId;
  return useCallback(
    (accountId: string) => {
      if (accountId === me) return t("you");
      const profile = profiles[accountId];
      if (profile) return profile.displayName || profile.username;
      return accountId.length > 12 ? `${accountId.slice(0, 8)}…` : accountId;
    },
    [me, t, profiles],
  );
}

export default function RoomView({ roomId, onOpenSidebar }: { roomId: string; onOpenSidebar: () => void }) {
  const t = useT();
  const store = useRoomsStore();
  const state = useRooms(store);
  const room = state.rooms.find((r) => r.id.toString() === roomId);
  const lost = state.lost[roomId];
  const [missing, setMissing] = useState(false);

  useEffect(() => {
    store.setViewing(roomId);
    return () => store.setViewing(null);
  }, [store, roomId]);

  // Opened by its address before the room list came: read it on its own.
  useEffect(() => {
    if (room || lost) return;
    let cancelled = false;
    store.client.getRoom({ roomId: BigInt(roomId) }).then(
      (res) => {
        if (!cancelled && res.room) store.roomChanged(res.room);
      },
      () => {
        if (!cancelled) setMissing(true);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [store, roomId, room, lost]);

  if (lost || (!room && missing)) {
    return (
      <>
        <ChatHeader title={t("rooms")} onOpenSidebar={onOpenSidebar} />
        <div className="flex flex-1 flex-col items-center justify-center gap-3 p-6 text-center" data-testid="room-gone">
          <p className="text-sm text-gray-700">{t(lost ? lostText[lost] : "roomNotFound")}</p>
          <button type="button" className="btn-secondary" onClick={() => navigate({ name: "new" })}>
            {t("newChat")}
          </button>
        </div>
      </>
    );
  }
  if (!room) {
    return (
      <>
        <ChatHeader title={t("rooms")} onOpenSidebar={onOpenSidebar} />
        <div className="flex-1" aria-busy="true" />
      </>
    );
  }
  return <OpenRoom key={roomId} room={room} onOpenSidebar={onOpenSidebar} />;
}

function OpenRoom({ room, onOpenSidebar }: { room: Room; onOpenSidebar: () => void }) {
  const t = useT();
  const toast = useToast();
  const { user } = useStore();
  const store = useRoomsStore();
  const state = useRooms(store);
  const id = room.id.toString();
  const timeline = state.timelines[id];
  const members = state.members[id];
  const [loadError, setLoadError] = useState<unknown>(null);
  const [draft, setDraft] = useState("");
  const [sending, setSending] = useState(false);
  const [panel, setPanel] = useState(false);
  const [settings, setSettings] = useState(false);
  const markedRead = useRef(0n);
  const accountName = useAccountName();

  // Others see "… is typing" while the draft changes: at most one SetTyping every 2 s (the
  // server shows it for 6 s and throttles too).
  const typingSent = useRef(0);
  const onDraft = (value: string, at = value.length) => {
    setDraft(value);
    setCaret(at);
    setPicked(0);
    const now = Date.now();
    if (value.trim() && now - typingSent.current > 2000) {
      typingSent.current = now;
      store.client.setTyping({ roomId: room.id }).catch(() => {
        // Only a hint to others: a refusal (muted, offline) shows nowhere.
      });
    }
  };
  const typingHere = state.typing[id];
  const [clock, setClock] = useState(() => Date.now());
  useEffect(() => {
    setClock(Date.now());
    if (!typingHere || Object.keys(typingHere).length === 0) return;
    const timer = setInterval(() => setClock(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [typingHere]);
  const typists = typingIn(state, id, clock);

  useEffect(() => {
    setLoadError(null);
    Promise.all([store.loadMessages(room.id), store.loadMembers(room.id)]).catch((err: unknown) => setLoadError(err));
  }, [store, room.id]);

  // Names (and @handles) of the members and of whoever wrote what is loaded.
  useEffect(() => {
    const ids = [...(members ?? []).map((m) => m.accountId), ...(timeline?.messages ?? []).map((m) => m.authorAccountId)];
    void store.loadProfiles(ids.filter(Boolean));
  }, [store, members, timeline?.messages]);

  // `@` autocomplete: the members other than the caller, by username, and the AI.
  const [caret, setCaret] = useState(0);
  const [picked, setPicked] = useState(0);
  const [dismissedAt, setDismissedAt] = useState<number | null>(null);
  const candidates: MentionCandidate[] = [
    ...(room.aiEnabled ? [{ handle: "ai", label: room.aiPersonaName || t("roomAi") }] : []),
    ...(room.aiEnabled && /^[\p{L}\p{N}_.-]+$/u.test(room.aiPersonaName) ? [{ handle: room.aiPersonaName, label: t("roomAi") }] : []),
    ...(members ?? [])
      .filter((m) => m.accountId !== user.accountId)
      .flatMap((m) => {
        const profile = state.profiles[m.accountId];
        return profile ? [{ handle: profile.username, label: profile.displayName }] : [];
      }),
  ];
  const typed = mentionAt(draft, caret);
  const suggestions = typed && typed.start !== dismissedAt ? mentionSuggestions(typed.query, candidates) : [];
  const active = suggestions.length > 0 ? Math.min(picked, suggestions.length - 1) : -1;
  const pick = (candidate: MentionCandidate) => {
    if (!typed) return;
    const next = insertMention(draft, typed.start, caret, candidate.handle);
    onDraft(next.text, next.caret);
    window.requestAnimationFrame(() => {
      const box = document.getElementById("composer");
      if (box instanceof HTMLTextAreaElement) {
        box.focus();
        box.setSelectionRange(next.caret, next.caret);
      }
    });
  };
  const onSuggestionKey = (e: KeyboardEvent<HTMLTextAreaElement>): boolean => {
    if (suggestions.length === 0 || !typed || e.nativeEvent.isComposing) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setPicked((active + step + suggestions.length) % suggestions.length);
      return true;
    }
    if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      pick(suggestions[active]);
      return true;
    }
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      setDismissedAt(typed.start);
      return true;
    }
    return false;
  };

  // What is on screen is read: the newest message marks the room read up to it (once the tab
  // is looked at again, if it is in the background).
  const [visible, setVisible] = useState(() => document.visibilityState !== "hidden");
  useEffect(() => {
    const onChange = () => setVisible(document.visibilityState !== "hidden");
    document.addEventListener("visibilitychange", onChange);
    return () => document.removeEventListener("visibilitychange", onChange);
  }, []);
  const newest = timeline?.messages.at(-1)?.id ?? 0n;
  useEffect(() => {
    if (newest === 0n || newest <= markedRead.current || !visible) return;
    markedRead.current = newest;
    store.client.markRoomRead({ roomId: room.id, messageId: newest }).then(
      (res) => res.room && store.update((s) => ({ ...s, rooms: s.rooms.map((r) => (r.id === room.id ? { ...r, unreadCount: 0n } : r)) })),
      () => {
        // Not marked: the next message tries again.
        markedRead.current = 0n;
      },
    );
  }, [store, room.id, newest, visible]);

  // Screen readers hear each finished message from someone else, not every streamed word.
  const [announcement, setAnnouncement] = useState("");
  const announced = useRef<string | null>(null);
  const latest = timeline?.messages.at(-1);
  const latestDone = latest && !timeline?.streaming.includes(latest.id.toString()) ? latest : undefined;
  useEffect(() => {
    if (!latestDone) return;
    const key = `${latestDone.id}:${latestDone.content.length}`;
    if (announced.current === key) return;
    // The history as loaded is not news.
    const first = announced.current === null;
    announced.current = key;
    if (first || latestDone.authorAccountId === user.accountId || latestDone.deletedAt || !latestDone.content) return;
    const author = latestDone.authorKind === AuthorKind.AI ? t("roomAi") : accountName(latestDone.authorAccountId);
    setAnnouncement(`${author}: ${latestDone.content.slice(0, 300)}`);
  }, [latestDone, user.accountId, accountName, t]);

  const items = timeline ? timelineItems(timeline) : [];
  // Who asked each AI answer (the author of the message it replies to): they may stop it.
  const askers = new Map((timeline?.messages ?? []).map((m) => [m.id.toString(), m.authorAccountId]));
  const readers = latest ? seenBy(state, room, latest) : [];
  const { scroller, content, showJump, onScroll, onWheel, followLatest, jumpToLatest } = useStickToBottom([
    items.length,
    timeline?.messages,
  ]);
  const me = members?.find((m) => m.accountId === user.accountId);
  const mutedUntil = me?.mutedUntil ? Number(me.mutedUntil.seconds) * 1000 : 0;
  const muted = mutedUntil > Date.now();
  const moderator = canModerate(room.myRole);

  const send = async () => {
    const content = draft.trim();
    if (!content) return;
    setSending(true);
    followLatest();
    try {
      const res = await store.client.postRoomMessage({ roomId: room.id, content });
      if (res.message) store.messageStored(res.message);
      setDraft("");
    } catch (err) {
      toast(`${t("couldNotSend")}: ${describeError(err, t)}`);
    } finally {
      setSending(false);
    }
  };

  const loadOlder = async () => {
    if (!timeline?.olderPageToken) return;
    try {
      await store.loadMessages(room.id, timeline.olderPageToken);
    } catch (err) {
      toast(describeError(err, t));
    }
  };

  return (
    <div className="flex min-h-0 flex-1">
      <div className="flex min-w-0 flex-1 flex-col">
        <ChatHeader
          title={`# ${room.name}`}
          subtitle={
            <span className="truncate" data-testid="room-subtitle">
              {[room.topic, t("memberCount", { count: Number(room.memberCount) })].filter(Boolean).join(" · ")}
            </span>
          }
          onOpenSidebar={onOpenSidebar}
          right={
            <div className="flex gap-1">
              <button type="button" className="btn-ghost text-xs" onClick={() => setPanel(!panel)} aria-pressed={panel}>
                {t("members")}
              </button>
              {moderator && (
                <button type="button" className="btn-ghost text-xs" onClick={() => setSettings(true)}>
                  {t("roomSettings")}
                </button>
              )}
            </div>
          }
        />
        <div className="relative min-h-0 flex-1">
          <div ref={scroller} onScroll={onScroll} onWheel={onWheel} className="h-full overflow-y-auto bg-white" data-testid="room-messages">
            <div ref={content} className="mx-auto flex max-w-3xl flex-col gap-4 px-4 py-6 sm:px-6" aria-busy={!timeline}>
              {loadError !== null && (
                <p role="alert" className="alert-error">
                  {t("roomLoadFailed")}: {describeError(loadError, t)}
                </p>
              )}
              {timeline?.olderPageToken && (
                <button type="button" className="self-center text-xs text-gray-600 underline" onClick={() => void loadOlder()}>
                  {t("olderMessages")}
                </button>
              )}
              {timeline && items.length === 0 && <p className="text-center text-sm text-gray-500">{t("roomEmpty")}</p>}
              {items.map((item) =>
                item.kind === "notice" ? (
                  <NoticeLine key={`n${item.notice.eventId}`} notice={item.notice} />
                ) : (
                  <RoomMessageItem
                    key={`m${item.message.id}`}
                    message={item.message}
                    room={room}
                    streaming={timeline?.streaming.includes(item.message.id.toString()) ?? false}
                    askedByMe={askers.get(item.message.replyToId?.toString() ?? "") === user.accountId}
                  />
                ),
              )}
              {latest && readers.length > 0 && (
                <p className="-mt-2 text-right text-xs text-gray-500" data-testid="room-seen-by">
                  {t("roomSeenBy", { names: readers.map(accountName).join(", ") })}
                </p>
              )}
            </div>
          </div>
          {showJump && (
            <button type="button" className="btn-secondary absolute bottom-3 left-1/2 -translate-x-1/2 shadow" onClick={jumpToLatest}>
              {t("jumpToLatest")}
            </button>
          )}
        </div>
        <p role="status" className="sr-only">
          {announcement}
        </p>
        {muted && (
          <p className="bg-amber-50 px-4 py-1 text-center text-xs text-amber-900" data-testid="muted-note">
            {mutedUntil > Date.UTC(9000, 0) ? t("mutedIndefinitely") : t("mutedUntil", { time: new Date(mutedUntil).toLocaleString() })}
          </p>
        )}
        {typists.length > 0 && (
          <p className="px-4 pt-1 text-xs text-gray-500" data-testid="room-typing">
            {t(typists.length === 1 ? "roomTypingOne" : "roomTypingMany", { names: typists.map(accountName).join(", ") })}
          </p>
        )}
        <Composer
          value={draft}
          onChange={onDraft}
          onSend={() => void send()}
          streaming={false}
          disabled={sending || muted}
          placeholder={room.aiEnabled ? t("roomComposerAi", { room: room.name }) : t("roomComposer", { room: room.name })}
          autoFocus
          onKeyDownFirst={onSuggestionKey}
          inputAria={{
            role: "combobox",
            "aria-autocomplete": "list",
            "aria-expanded": suggestions.length > 0,
            "aria-controls": "mention-suggestions",
            "aria-activedescendant": active >= 0 ? `mention-${suggestions[active].handle}` : undefined,
          }}
          suggestions={
            suggestions.length > 0 && (
              <ul
                id="mention-suggestions"
                role="listbox"
                aria-label={t("mentionSuggestions")}
                className="absolute bottom-full left-3 z-10 mb-1 max-h-64 w-64 overflow-y-auto rounded-lg border border-gray-200 bg-white py-1 text-sm shadow-lg sm:left-6"
                data-testid="mention-suggestions"
              >
                {suggestions.map((c, i) => (
                  <li
                    key={c.handle}
                    id={`mention-${c.handle}`}
                    role="option"
                    aria-selected={i === active}
                    className={`cursor-pointer px-3 py-1.5 ${i === active ? "bg-gray-100" : ""}`}
                    onMouseDown={(e) => {
                      // Keeps the focus in the box.
                      e.preventDefault();
                      pick(c);
                    }}
                  >
                    <span className="font-medium">@{c.handle}</span>
                    {c.label && c.label !== c.handle && <span className="ml-2 text-gray-500">{c.label}</span>}
                  </li>
                ))}
              </ul>
            )
          }
        />
      </div>
      {panel && <MembersPanel room={room} members={members ?? []} onClose={() => setPanel(false)} />}
      {settings && <RoomSettingsDialog room={room} onClose={() => setSettings(false)} />}
    </div>
  );
}

const noticeText: Record<RoomNotice["kind"], MessageKey> = {
  joined: "noticeJoined",
  left: "noticeLeft",
  kicked: "noticeKicked",
  banned: "noticeBanned",
};

function NoticeLine({ notice }: { notice: RoomNotice }) {
  const t = useT();
  const name = useAccountName();
  return (
    <p className="text-center text-xs text-gray-500" data-testid="room-notice">
      {t(noticeText[notice.kind], { name: name(notice.accountId) })}
    </p>
  );
}

const RoomMessageItem = memo(function RoomMessageItem({
  message,
  room,
  streaming,
  askedByMe,
}: {
  message: RoomMessage;
  room: Room;
  streaming: boolean;
  /** The caller asked the question this AI answer replies to. */
  askedByMe: boolean;
}) {
  const t = useT();
  const toast = useToast();
  const { locale } = useLocale();
  const { user } = useStore();
  const store = useRoomsStore();
  const name = useAccountName();
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(message.content);
  const [deleting, setDeleting] = useState(false);
  const [stopping, setStopping] = useState(false);

  if (message.type === RoomMessageType.SYSTEM_EVENT || message.authorKind === AuthorKind.SYSTEM) {
    return (
      <p className="text-center text-xs text-gray-500" data-testid="room-notice">
        {message.content}
      </p>
    );
  }
  const isAi = message.authorKind === AuthorKind.AI;
  const mine = !isAi && message.authorAccountId === user.accountId;
  const author = isAi ? room.aiPersonaName || t("roomAi") : mine ? user.displayName || user.username : name(message.authorAccountId);
  const deleted = message.deletedAt !== undefined;
  const canDelete = !deleted && (mine || canModerate(room.myRole));
  const writing = isAi && message.status === MessageStatus.STREAMING;
  const canStop = writing && (askedByMe || canModerate(room.myRole));

  const stop = async () => {
    setStopping(true);
    try {
      const res = await store.client.stopRoomAnswer({ roomId: room.id, messageId: message.id });
      if (res.message) store.messageStored(res.message);
    } catch (err) {
      toast(`${t("couldNotStopAnswer")}: ${describeError(err, t)}`);
    } finally {
      setStopping(false);
    }
  };

  const saveEdit = async () => {
    try {
      const res = await store.client.editRoomMessage({ roomId: room.id, messageId: message.id, content: text.trim() });
      if (res.message) store.messageStored(res.message);
      setEditing(false);
    } catch (err) {
      toast(`${t("couldNotEditMessage")}: ${describeError(err, t)}`);
    }
  };
  const remove = async () => {
    try {
      await store.client.deleteRoomMessage({ roomId: room.id, messageId: message.id });
    } catch (err) {
      toast(`${t("couldNotDeleteMessage")}: ${describeError(err, t)}`);
    }
  };

  return (
    <article
      className="group flex gap-3"
      data-testid="room-message"
      data-author={isAi ? "ai" : mine ? "me" : "other"}
      data-message-id={message.id.toString()}
      aria-label={`${author}`}
    >
      <Avatar name={isAi ? "AI" : author} url={mine ? user.avatarUrl : undefined} size={32} />
      <div className="min-w-0 flex-1">
        <div className="flex flex-wrap items-baseline gap-x-2 text-xs text-gray-500">
          <span className="font-semibold text-gray-900" title={isAi ? undefined : message.authorAccountId}>
            {author}
          </span>
          {isAi && <span className="rounded bg-violet-100 px-1 text-[11px] font-medium text-violet-800">{t("aiAnswer")}</span>}
          <time>{formatTime(message.createdAt, locale)}</time>
          {message.editedAt && !deleted && <span data-testid="edited-mark">{t("editedMark")}</span>}
          {isAi && message.status === MessageStatus.STOPPED && <span data-testid="room-answer-stopped">{t("roomAnswerStopped")}</span>}
          {canStop && (
            <button
              type="button"
              className="btn-secondary px-2 py-0.5 text-xs"
              onClick={() => void stop()}
              disabled={stopping}
              data-testid="room-stop-answer"
            >
              {t("roomStopAnswer")}
            </button>
          )}
        </div>
        {deleted ? (
          <p className="text-sm text-gray-500 italic" data-testid="deleted-mark">
            {t("messageDeleted")}
          </p>
        ) : editing ? (
          <form
            className="mt-1 space-y-2"
            onSubmit={(e) => {
              e.preventDefault();
              void saveEdit();
            }}
          >
            <textarea
              className="input min-h-20"
              value={text}
              onChange={(e) => setText(e.target.value)}
              aria-label={t("editMessage")}
              autoFocus
            />
            <div className="flex gap-2">
              <button type="submit" className="btn-primary" disabled={!text.trim()}>
                {t("save")}
              </button>
              <button type="button" className="btn-secondary" onClick={() => setEditing(false)}>
                {t("cancel")}
              </button>
            </div>
          </form>
        ) : (
          <div className="prose prose-sm max-w-none text-gray-900" data-testid="room-message-text">
            {isAi && !message.content && streaming ? (
              <span className="animate-pulse text-gray-500">…</span>
            ) : (
              <Markdown text={message.content} streaming={streaming} />
            )}
            {isAi && message.status === MessageStatus.FAILED && (
              <p role="alert" className="alert-error mt-1 text-xs">
                {t("roomAnswerFailed", { error: message.error })}
              </p>
            )}
          </div>
        )}
        {!editing && (mine || canDelete) && !deleted && (
          <div className="mt-1 flex gap-0.5 text-gray-500 [@media(hover:hover)]:opacity-0 [@media(hover:hover)]:group-hover:opacity-100 focus-within:opacity-100">
            {mine && (
              <button
                type="button"
                className="btn-ghost"
                onClick={() => {
                  setText(message.content);
                  setEditing(true);
                }}
                aria-label={t("editMessage")}
                title={t("editMessage")}
              >
                <EditIcon />
              </button>
            )}
            {canDelete && (
              <button
                type="button"
                className="btn-ghost"
                onClick={() => setDeleting(true)}
                aria-label={t("deleteMessage")}
                title={t("deleteMessage")}
              >
                <TrashIcon />
              </button>
            )}
          </div>
        )}
      </div>
      {deleting && (
        <ConfirmModal
          open
          title={t("deleteMessage")}
          message={t("deleteRoomMessageConfirm")}
          confirmLabel={t("delete")}
          cancelLabel={t("cancel")}
          onConfirm={() => void remove()}
          onClose={() => setDeleting(false)}
        />
      )}
    </article>
  );
});

// One join per code, however often the page asks (React runs effects twice in development).
const joins = new Map<string, ReturnType<RoomsStore["client"]["joinByInviteCode"]>>();

/** An invite link opened: joins with its code, then shows the room. */
export function RoomJoin({ code, onOpenSidebar }: { code: string; onOpenSidebar: () => void }) {
  const t = useT();
  const store = useRoomsStore();
  useRooms(store);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    let join = joins.get(code);
    if (!join) {
      join = store.client.joinByInviteCode({ code });
      joins.set(code, join);
      const settled = join;
      // Forgotten once answered, so the same link can be tried again later.
      void settled.catch(() => {}).finally(() => window.setTimeout(() => joins.delete(code), 1000));
    }
    join.then(
      (res) => {
        if (cancelled || !res.room) return;
        store.roomChanged(res.room);
        navigate({ name: "room", id: res.room.id.toString() }, { replace: true });
      },
      (err: unknown) => {
        if (!cancelled) setError(describeError(err, t));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [store, code, t]);
  return (
    <>
      <ChatHeader title={t("joinWithCode")} onOpenSidebar={onOpenSidebar} />
      <div className="flex flex-1 items-center justify-center p-6" aria-busy={!error}>
        {error ? (
          <p role="alert" className="alert-error">
            {t("couldNotJoinRoom")}: {error}
          </p>
        ) : (
          <p className="text-sm text-gray-500">{t("joiningRoom")}</p>
        )}
      </div>
    </>
  );
}
