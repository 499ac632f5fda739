import { useCallback, useEffect, useLayoutEffect, useReducer, useRef, useState, type ReactNode } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { useStore } from "../app/store";
import { errorMessage } from "../api/client";
import { useT } from "../i18n";
import { emptyThread, fromProto, lastAssistant, threadReducer, type ChatMessage } from "./thread";
import type { ChatEvent } from "../gen/parley/chat/v1/message_pb";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import { Composer } from "./Composer";
import { MessageItem } from "./MessageItem";
import { ArrowDownIcon, CheckIcon, ChevronDownIcon, CloseIcon, DotsIcon, MenuIcon } from "../ui/icons";
import { Menu } from "../ui/Menu";
import { ConfirmModal } from "../ui/Modal";
import { useSessionActions } from "../layout/Sidebar";
import { takePendingMessage } from "./pending";
import { useToast } from "../ui/toast";

/** The white header: the chat's counterpart (persona and model), centred. */
export function ChatHeader({
  title,
  subtitle,
  onOpenSidebar,
  right,
}: {
  title: string;
  subtitle?: ReactNode;
  onOpenSidebar: () => void;
  right?: ReactNode;
}) {
  const t = useT();
  return (
    <header className="grid h-14 shrink-0 grid-cols-[3rem_1fr_3rem] items-center border-b border-gray-200 bg-white px-2 text-gray-900">
      <div>
        <button
          type="button"
          className="btn-ghost md:hidden"
          onClick={onOpenSidebar}
          aria-label={t("openSidebar")}
          aria-haspopup="dialog"
          data-sidebar-toggle
        >
          <MenuIcon />
        </button>
      </div>
      <div className="min-w-0 text-center" data-testid="chat-header">
        <h1 className="truncate text-[15px] font-semibold leading-5" data-testid="counterpart">
          {title}
        </h1>
        {subtitle && <div className="flex min-w-0 justify-center text-xs text-gray-500">{subtitle}</div>}
      </div>
      <div className="flex justify-end">{right}</div>
    </header>
  );
}

function useCounterpart(session: Session | null) {
  const t = useT();
  const { personas, configs } = useStore();
  const persona = session?.personaId !== undefined ? personas.find((p) => p.id === session.personaId) : undefined;
  const config = session?.apiConfigId !== undefined ? configs.find((c) => c.id === session.apiConfigId) : configs[0];
  return {
    name: persona?.name ?? t("appName"),
    model: session?.model || config?.model || "",
    title: session?.title || t("untitled"),
  };
}

type StreamOpener = (signal: AbortSignal) => AsyncIterable<{ event?: ChatEvent }>;

export function ChatView({ sessionId, onOpenSidebar }: { sessionId: string; onOpenSidebar: () => void }) {
  const t = useT();
  const store = useStore();
  const { api, upsertSession, reloadSessions, user } = store;
  const [session, setSession] = useState<Session | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [thread, dispatch] = useReducer(threadReducer, emptyThread);
  const [draft, setDraft] = useState("");
  const [running, setRunning] = useState(false);
  const [deleteId, setDeleteId] = useState<string | null>(null);
  // Screen readers hear each finished answer once, not every token of it.
  const [announcement, setAnnouncement] = useState("");
  const abortRef = useRef<AbortController | null>(null);
  const watchRef = useRef<((messageId: string) => Promise<unknown>) | null>(null);
  const reattachments = useRef(0);
  const mounted = useRef(true);
  const counterpart = useCounterpart(session);
  // A rename from the sidebar reaches this view through the store's list.
  const listed = store.sessions.find((s) => s.id.toString() === sessionId);
  useEffect(() => {
    if (listed) setSession(listed);
  }, [listed]);
  const id = BigInt(sessionId);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      // Leaving the chat stops listening, not the generation: it runs on in the server.
      abortRef.current?.abort();
    };
  }, []);

  const loadMessages = useCallback(async (): Promise<ChatMessage[]> => {
    const all: ChatMessage[] = [];
    let pageToken = "";
    for (let page = 0; page < 100; page++) {
      const res = await api.messages.listMessages({ sessionId: id, pageSize: 100, pageToken });
      all.push(...res.messages.map(fromProto));
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    return all;
  }, [api, id]);

  const onSessionChanged = useCallback(
    (s: Session) => {
      setSession(s);
      upsertSession(s);
    },
    [upsertSession],
  );

  /** Reads a generation's events into the thread. Resolves whether the user's message was stored. */
  const runStream = useCallback(
    async (open: StreamOpener): Promise<{ userStored: boolean; error: string | null }> => {
      abortRef.current?.abort();
      const controller = new AbortController();
      abortRef.current = controller;
      setRunning(true);
      let received = false;
      let userStored = false;
      let error: string | null = null;
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          for await (const res of open(controller.signal)) {
            const event = res.event;
            if (!event) continue;
            received = true;
            if (event.event.case === "userMessage") userStored = true;
            if (event.event.case === "sessionUpdated") onSessionChanged(event.event.value);
            if (event.event.case === "error") error = event.event.value.message;
            // The answer is final: the chat is free for the next message, while the stream
            // stays open a little longer for a generated title.
            if (event.event.case === "completed" || event.event.case === "error") setRunning(false);
            if (event.event.case === "completed") {
              setAnnouncement(`${t("answerComplete")}: ${event.event.value.content.slice(0, 500)}`);
            }
            dispatch({ type: "event", event });
          }
          dispatch({ type: "streamEnded" });
          break;
        } catch (err) {
          if (controller.signal.aborted) break;
          // An access token that expired between the check and the call: renew and retry,
          // but only when the server had not accepted anything yet.
          if (!received && attempt === 0 && ConnectError.from(err).code === Code.Unauthenticated && (await api.tokens.refresh())) {
            continue;
          }
          error = errorMessage(err);
          dispatch({ type: "streamFailed", error });
          break;
        }
      }
      if (abortRef.current === controller) abortRef.current = null;
      if (!controller.signal.aborted && mounted.current) {
        setRunning(false);
        // The chat just became the most recently active one: the list re-sorts.
        void reloadSessions().catch(() => {});
        // The server's rows are the truth (a replaced answer, a stopped one): read them back,
        // without holding up the caller (a refused send gives its text back at once).
        void loadMessages().then(
          (messages) => {
            if (mounted.current && !abortRef.current) {
              dispatch({ type: "loaded", messages, keepError: true });
              // The stream broke off but the generation runs on (it outlives its clients):
              // follow it again, a few times at most.
              const running = messages.find((m) => m.role === "assistant" && m.status === "streaming");
              if (running && reattachments.current < 3) {
                reattachments.current += 1;
                window.setTimeout(() => {
                  if (mounted.current && !abortRef.current) void watchRef.current?.(running.id);
                }, 1000);
              }
            }
          },
          () => {
            // The live view stays; the next load corrects it.
          },
        );
      }
      return { userStored, error };
    },
    [api, loadMessages, onSessionChanged, reloadSessions, t],
  );

  const watch = useCallback(
    (messageId: string) => {
      dispatch({ type: "watchStarted", messageId });
      return runStream((signal) => api.messages.watchGeneration({ messageId: BigInt(messageId) }, { signal }));
    },
    [api, runStream],
  );
  watchRef.current = watch;

  const refreshTitleLater = useCallback(() => {
    // The title is generated after the first answer; it may land after the stream closed.
    for (const delay of [1500, 4000]) {
      window.setTimeout(async () => {
        if (!mounted.current) return;
        try {
          const res = await api.sessions.getSession({ id });
          if (res.session && mounted.current) onSessionChanged(res.session);
        } catch {
          // Not essential: the list shows the title on its next load.
        }
      }, delay);
    }
  }, [api, id, onSessionChanged]);

  const send = useCallback(
    async (content: string) => {
      reattachments.current = 0;
      const tempId = `pending-${Date.now()}`;
      dispatch({ type: "sendStarted", tempId, content });
      setDraft("");
      const result = await runStream((signal) => api.messages.sendMessage({ sessionId: id, content }, { signal }));
      if (!result.userStored) {
        // Nothing was stored: the text goes back into the box, the error stays in view.
        dispatch({ type: "sendFailed", tempId, error: result.error ?? t("networkError") });
        setDraft((current) => (current === "" ? content : current));
      }
      if (!session?.title) refreshTitleLater();
    },
    [api, id, runStream, refreshTitleLater, session?.title, t],
  );

  // Load the chat; re-attach to a generation still running (a reload mid-stream).
  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const [sessionRes, messages] = await Promise.all([api.sessions.getSession({ id }), loadMessages()]);
        if (cancelled) return;
        if (sessionRes.session) setSession(sessionRes.session);
        dispatch({ type: "loaded", messages });
        const streaming = [...messages].reverse().find((m) => m.role === "assistant" && m.status === "streaming");
        const pending = takePendingMessage(sessionId);
        if (streaming) void watch(streaming.id);
        else if (pending) void send(pending);
      } catch (err) {
        if (cancelled) return;
        setLoadError(ConnectError.from(err).code === Code.NotFound ? t("chatNotFound") : errorMessage(err));
      }
    })();
    return () => {
      cancelled = true;
    };
    // Only when the chat changes; the callbacks are stable for one chat.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sessionId]);

  useEffect(() => {
    if (!session) return;
    document.title = `${counterpart.title} · Parley`;
    return () => {
      document.title = "Parley";
    };
  }, [session, counterpart.title]);

  // --- scrolling: follow the newest text unless the user scrolled up ---
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  // Where the view was last pinned to the bottom: a position above it that is not the bottom
  // means the reader moved, even before their scroll event arrived (deltas come faster).
  const pinnedAt = useRef<number | null>(null);
  const [showJump, setShowJump] = useState(false);
  const nearBottom = (el: HTMLElement) => el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  const unstick = () => {
    stick.current = false;
    setShowJump(true);
  };
  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const atBottom = nearBottom(el);
    stick.current = atBottom;
    setShowJump(!atBottom);
  };
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || !stick.current) return;
    if (pinnedAt.current !== null && el.scrollTop < pinnedAt.current - 4 && !nearBottom(el)) {
      unstick();
      return;
    }
    el.scrollTop = el.scrollHeight;
    pinnedAt.current = el.scrollTop;
  }, [thread.messages]);
  /** The next render pins the view to the bottom (after the user sends or regenerates). */
  const followLatest = () => {
    stick.current = true;
    pinnedAt.current = null;
  };
  const jumpToLatest = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = true;
    el.scrollTop = el.scrollHeight;
    pinnedAt.current = el.scrollTop;
    setShowJump(false);
  };

  const streamingId = thread.streamingId;
  const busy = running || streamingId !== null;

  const stop = async () => {
    const target = streamingId;
    if (!target) return;
    try {
      const res = await api.messages.stopGeneration({ messageId: BigInt(target) });
      if (res.message) dispatch({ type: "messageUpdated", message: fromProto(res.message) });
    } catch (err) {
      dispatch({ type: "showError", error: errorMessage(err) });
    }
  };

  // Stable callbacks, so the answers that do not change skip re-rendering while one streams.
  const regenerate = useCallback(
    async (messageId: string) => {
      reattachments.current = 0;
      dispatch({ type: "regenerateStarted", messageId });
      stick.current = true;
      pinnedAt.current = null;
      await runStream((signal) => api.messages.regenerateMessage({ messageId: BigInt(messageId) }, { signal }));
    },
    [api, runStream],
  );

  const edit = useCallback(
    async (messageId: string, content: string): Promise<boolean> => {
      try {
        const res = await api.messages.updateMessage({ id: BigInt(messageId), content });
        if (res.message) dispatch({ type: "messageUpdated", message: fromProto(res.message) });
        return true;
      } catch (err) {
        dispatch({ type: "showError", error: errorMessage(err) });
        return false;
      }
    },
    [api],
  );

  const remove = async (messageId: string) => {
    try {
      await api.messages.deleteMessage({ id: BigInt(messageId) });
      dispatch({ type: "messageDeleted", id: messageId });
    } catch (err) {
      dispatch({ type: "showError", error: errorMessage(err) });
    }
  };

  const last = lastAssistant(thread);
  const lastMessage = thread.messages[thread.messages.length - 1];

  if (loadError) {
    return (
      <>
        <ChatHeader title={t("appName")} onOpenSidebar={onOpenSidebar} />
        <div className="flex flex-1 items-center justify-center p-6">
          <p role="alert" className="alert-error">
            {loadError}
          </p>
        </div>
      </>
    );
  }

  return (
    <>
      <ChatHeader
        title={counterpart.name}
        subtitle={
          session ? (
            <ModelSwitcher session={session} model={counterpart.model} onChanged={onSessionChanged} />
          ) : (
            <span data-testid="header-model">{counterpart.model}</span>
          )
        }
        onOpenSidebar={onOpenSidebar}
        right={session && <SessionMenu session={session} onChanged={setSession} />}
      />
      <div className="relative min-h-0 flex-1">
        <div
          ref={scroller}
          onScroll={onScroll}
          onWheel={(e) => {
            if (e.deltaY < 0) unstick();
          }}
          className="h-full overflow-y-auto bg-white"
          data-testid="message-list"
        >
          <div className="mx-auto flex max-w-3xl flex-col gap-6 px-4 py-6 sm:px-6" aria-busy={busy}>
            {session?.systemPrompt && (
              <details className="rounded-lg border border-dashed border-gray-300 px-3 py-2 text-sm text-gray-600">
                <summary className="cursor-pointer">{t("systemPrompt")}</summary>
                <p className="mt-2 whitespace-pre-wrap">{session.systemPrompt}</p>
              </details>
            )}
            {thread.messages
              .filter((m) => m.role !== "system")
              .map((m) => (
                <MessageItem
                  key={m.id}
                  message={m}
                  streaming={m.id === streamingId}
                  canRegenerate={m.role === "assistant" && m.id === last?.id && m.id === lastMessage?.id}
                  busy={busy}
                  assistantName={counterpart.name}
                  userName={user.displayName || user.username}
                  userAvatar={user.avatarUrl}
                  onRegenerate={regenerate}
                  onEdit={edit}
                  onDelete={setDeleteId}
                />
              ))}
            {thread.error && (
              <div role="alert" className="alert-error flex items-start justify-between gap-3" data-testid="chat-error">
                <span className="break-words">{thread.error}</span>
                <button
                  type="button"
                  className="shrink-0 rounded p-0.5 hover:bg-red-100"
                  onClick={() => dispatch({ type: "dismissError" })}
                  aria-label={t("dismiss")}
                >
                  <CloseIcon width={16} height={16} />
                </button>
              </div>
            )}
          </div>
        </div>
        <p role="status" className="sr-only">
          {announcement}
        </p>
        {showJump && (
          <button
            type="button"
            onClick={jumpToLatest}
            className="absolute bottom-3 left-1/2 flex -translate-x-1/2 items-center gap-1 rounded-full border border-gray-300 bg-white px-3 py-1.5 text-xs shadow-md hover:bg-gray-50"
          >
            <ArrowDownIcon width={14} height={14} />
            {t("jumpToLatest")}
          </button>
        )}
      </div>
      <Composer
        value={draft}
        onChange={setDraft}
        onSend={() => {
          followLatest();
          void send(draft.trim());
        }}
        onStop={stop}
        streaming={busy}
        disabled={!session}
        placeholder={t("messagePlaceholder", { name: counterpart.name })}
        autoFocus
      />
      <ConfirmModal
        open={deleteId !== null}
        title={t("delete")}
        message={t("deleteMessageConfirm")}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => deleteId && void remove(deleteId)}
        onClose={() => setDeleteId(null)}
      />
    </>
  );
}

function SessionMenu({ session, onChanged }: { session: Session; onChanged: (s: Session) => void }) {
  const t = useT();
  const { items, modals } = useSessionActions(session, onChanged);
  return (
    <>
      <Menu label={t("chatOptions")} align="right" buttonClassName="btn-ghost" button={<DotsIcon />} items={items} />
      {modals}
    </>
  );
}

/** The model under the persona's name: a menu to answer this chat with another API config. */
function ModelSwitcher({ session, model, onChanged }: { session: Session; model: string; onChanged: (s: Session) => void }) {
  const t = useT();
  const { api, configs } = useStore();
  const toast = useToast();
  const current = session.apiConfigId ?? configs[0]?.id;
  const choose = async (configId: bigint) => {
    try {
      // An empty model means the config's own model.
      const res = await api.sessions.updateSession({
        id: session.id,
        apiConfigId: configId,
        model: "",
        updateMask: { paths: ["api_config_id", "model"] },
      });
      if (res.session) onChanged(res.session);
    } catch (err) {
      toast(`${t("couldNotSwitchModel")}: ${errorMessage(err)}`);
    }
  };
  return (
    <Menu
      label={t("apiConfig")}
      align="center"
      buttonClassName="inline-flex max-w-full items-center gap-0.5 rounded px-1 hover:bg-gray-100 hover:text-gray-900"
      button={
        <>
          <span className="truncate" data-testid="header-model">
            {model}
          </span>
          <ChevronDownIcon width={12} height={12} />
        </>
      }
      items={configs.map((c) => ({
        label: `${c.name} · ${c.model}`,
        icon: <CheckIcon width={14} height={14} className={c.id === current ? "" : "invisible"} />,
        onSelect: () => void choose(c.id),
      }))}
    />
  );
}
