import { startTransition, useCallback, useEffect, useReducer, useRef, useState, type ReactNode } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { useStore } from "../app/store";
import { useT } from "../i18n";
import { chatFailure, describeError, describeFailure } from "../ui/errorText";
import { personaText } from "../ui/personaText";
import { emptyThread, fromProto, lastAssistant, streamingAnswer, threadReducer, type ChatMessage } from "./thread";
import type { ChatEvent } from "../gen/parley/chat/v1/message_pb";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import { Composer } from "./Composer";
import { usePromptCommands } from "../library/PromptCommands";
import { MessageItem } from "./MessageItem";
import { ArrowDownIcon, CloseIcon, DotsIcon, MenuIcon } from "../ui/icons";
import { ModelPicker } from "./ModelPicker";
import { ChatSettingsButton } from "./ChatSettingsPanel";
import { formatTime } from "../ui/time";
import { rememberChat } from "../settings/configForm";
import { useLocale } from "../i18n";
import { Menu } from "../ui/Menu";
import { ConfirmModal } from "../ui/Modal";
import { useSessionActions } from "../layout/Sidebar";
import {
  chatDraftKey,
  firstMessageSent,
  isFirstMessage,
  newChatDraftKey,
  readDraft,
  returnFirstMessage,
  useDraft,
  writeDraft,
} from "./drafts";
import { createEventBatcher } from "./eventBatcher";
import { useStickToBottom } from "./useStickToBottom";
import { navigate } from "../app/router";
import { prefetchChatParts, prepareChat } from "../markdown/parts";
import { listAllMessages, takePreloadedChat } from "../app/preload";

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
    <header className="grid h-14 shrink-0 grid-cols-[5rem_1fr_5rem] items-center border-b border-gray-200 bg-white px-2 text-gray-900">
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
        <h1 className="h-5 truncate text-[15px] font-semibold leading-5" data-testid="counterpart">
          {title}
        </h1>
        {/* One fixed line: the model's name arriving does not move the title. */}
        {subtitle && <div className="flex h-4 min-w-0 justify-center text-xs leading-4 text-gray-500">{subtitle}</div>}
      </div>
      <div className="flex justify-end">{right}</div>
    </header>
  );
}

function useCounterpart(session: Session | null) {
  const t = useT();
  const { personas, chatConfigs: configs } = useStore();
  const persona = session?.personaId !== undefined ? personas.find((p) => p.id === session.personaId) : undefined;
  const config = session?.apiConfigId !== undefined ? configs.find((c) => c.id === session.apiConfigId) : configs[0];
  return {
    name: persona ? personaText(persona, t).name : t("appName"),
    model: session?.model || config?.model || "",
    title: session?.title || t("untitled"),
  };
}

type StreamOpener = (signal: AbortSignal) => AsyncIterable<{ event?: ChatEvent }>;

interface StreamResult {
  /** The server said it stored the user's message. */
  userStored: boolean;
  error: string | null;
  /** The chat as the server has it after the stream, or null when it could not be read
   * (or the stream was abandoned: the view went away, or another stream took over). */
  messages: ChatMessage[] | null;
}

function SkeletonMessages() {
  return (
    <div className="flex flex-col gap-6" aria-hidden="true" data-testid="messages-loading">
      <div className="ml-auto h-10 w-2/5 animate-pulse rounded-2xl bg-gray-100" />
      <div className="space-y-2">
        <div className="h-4 w-11/12 animate-pulse rounded bg-gray-100" />
        <div className="h-4 w-4/5 animate-pulse rounded bg-gray-100" />
        <div className="h-4 w-3/5 animate-pulse rounded bg-gray-100" />
      </div>
      <div className="ml-auto h-10 w-1/3 animate-pulse rounded-2xl bg-gray-100" />
    </div>
  );
}

export function ChatView({ sessionId, onOpenSidebar }: { sessionId: string; onOpenSidebar: () => void }) {
  const t = useT();
  const store = useStore();
  const { api, upsertSession, removeSession, refreshSession, user } = store;
  const [session, setSession] = useState<Session | null>(null);
  const sessionRef = useRef(session);
  sessionRef.current = session;
  const [loadError, setLoadError] = useState<{ message: string; notFound: boolean } | null>(null);
  const [loadAttempt, setLoadAttempt] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [thread, dispatch] = useReducer(threadReducer, emptyThread);
  const threadRef = useRef(thread);
  threadRef.current = thread;
  const draftKey = chatDraftKey(user.id, sessionId);
  const [draft, setDraft] = useDraft(draftKey);
  const slash = usePromptCommands(api, draft, setDraft);
  const [running, setRunning] = useState(false);
  // Stop was pressed before the answer's id was known: it is stopped as soon as it is.
  const stopRequested = useRef(false);
  const [stopping, setStopping] = useState(false);
  const [deleteId, setDeleteId] = useState<string | null>(null);
  // Screen readers hear each finished answer once, not every token of it.
  const [announcement, setAnnouncement] = useState("");
  const abortRef = useRef<AbortController | null>(null);
  const watchRef = useRef<((messageId: string) => Promise<unknown>) | null>(null);
  const reattachments = useRef(0);
  const mounted = useRef(true);
  const counterpart = useCounterpart(session);
  const headerKnown = session !== null && store.catalogLoad.status !== "loading";
  // A rename from the sidebar reaches this view through the store's list.
  const listed = store.sessions.find((s) => s.id.toString() === sessionId);
  useEffect(() => {
    if (listed) setSession(listed);
  }, [listed]);
  const id = BigInt(sessionId);
  // Saving an API config in Settings offers the way back here.
  useEffect(() => rememberChat(sessionId), [sessionId]);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      // Leaving the chat stops listening, not the generation: it runs on in the server.
      abortRef.current?.abort();
    };
  }, []);

  const loadMessages = useCallback(async (): Promise<ChatMessage[]> => (await listAllMessages(api, id)).map(fromProto), [api, id]);

  const onSessionChanged = useCallback(
    (s: Session) => {
      setSession(s);
      upsertSession(s);
    },
    [upsertSession],
  );

  const stopGeneration = useCallback(
    async (messageId: string) => {
      setStopping(true);
      try {
        const res = await api.messages.stopGeneration({ messageId: BigInt(messageId) });
        if (res.message) dispatch({ type: "messageUpdated", message: fromProto(res.message) });
      } catch (err) {
        setStopping(false);
        dispatch({ type: "showError", error: describeError(err, t) });
      }
    },
    [api],
  );

  /** Reads a generation's events into the thread, then the chat as the server stored it. */
  const runStream = useCallback(
    async (open: StreamOpener): Promise<StreamResult> => {
      abortRef.current?.abort();
      const controller = new AbortController();
      abortRef.current = controller;
      stopRequested.current = false;
      setStopping(false);
      setRunning(true);
      const batcher = createEventBatcher((events) => dispatch({ type: "events", events }));
      let received = false;
      let userStored = false;
      let error: string | null = null;
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          for await (const res of open(controller.signal)) {
            const event = res.event;
            if (!event) continue;
            received = true;
            const e = event.event;
            if (e.case === "userMessage") userStored = true;
            if (e.case === "sessionUpdated") onSessionChanged(e.value);
            if (e.case === "error") error = describeFailure(chatFailure(e.value), t);
            if (e.case === "assistantStarted" && stopRequested.current) {
              stopRequested.current = false;
              void stopGeneration(e.value.id.toString());
            }
            batcher.push(event);
            // The answer is final: the chat is free for the next message, while the stream
            // stays open a little longer for a generated title.
            if (e.case === "completed" || e.case === "error") {
              setRunning(false);
              setStopping(false);
            }
            if (e.case === "completed") setAnnouncement(`${t("answerComplete")}: ${e.value.content.slice(0, 500)}`);
          }
          batcher.flush();
          dispatch({ type: "streamEnded" });
          break;
        } catch (err) {
          if (controller.signal.aborted) {
            batcher.cancel();
            break;
          }
          batcher.flush();
          // An access token that expired between the check and the call: renew and retry,
          // but only when the server had not accepted anything yet.
          if (
            !received &&
            attempt === 0 &&
            ConnectError.from(err).code === Code.Unauthenticated &&
            (await api.tokens.refresh().catch(() => null))
          ) {
            continue;
          }
          error = describeError(err, t);
          dispatch({ type: "streamFailed", error });
          break;
        }
      }
      if (abortRef.current === controller) abortRef.current = null;
      stopRequested.current = false;
      if (controller.signal.aborted || !mounted.current) return { userStored, error, messages: null };
      setRunning(false);
      setStopping(false);
      // The chat just became the most recently active one: the list re-sorts.
      void refreshSession(id);
      // The server's rows are the truth (a replaced answer, a stopped one, a message stored
      // although the stream broke before saying so): read them back.
      let messages: ChatMessage[] | null = null;
      try {
        messages = await loadMessages();
      } catch {
        // The live view stays; the next load corrects it.
      }
      if (messages && mounted.current && !abortRef.current) {
        dispatch({ type: "loaded", messages, keepError: true });
        // The stream broke off but the generation runs on (it outlives its clients):
        // follow it again, a few times at most.
        const streaming = streamingAnswer(messages);
        if (streaming && reattachments.current < 3) {
          reattachments.current += 1;
          window.setTimeout(() => {
            if (mounted.current && !abortRef.current) void watchRef.current?.(streaming.id);
          }, 1000);
        }
      }
      return { userStored, error, messages };
    },
    [api, id, loadMessages, onSessionChanged, refreshSession, stopGeneration, t],
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
    // The title is generated after the first answer; it may land after the stream closed, or
    // after the user moved on to another chat: the list gets it either way, asking less often
    // as time goes by, until it has one.
    const delays = [1500, 4000, 10_000, 30_000];
    const ask = (attempt: number) =>
      window.setTimeout(async () => {
        const fresh = await refreshSession(id);
        if (fresh && !fresh.title && attempt + 1 < delays.length) ask(attempt + 1);
      }, delays[attempt]);
    ask(0);
  }, [id, refreshSession]);

  /** A first message the server refused before storing anything: the chat it was to open is
   * empty, so it goes, and the new-chat page gets the text and the error back. */
  const abandonEmptyChat = useCallback(
    async (content: string, error: string): Promise<boolean> => {
      try {
        await api.sessions.deleteSession({ id });
      } catch {
        return false;
      }
      removeSession(sessionId);
      writeDraft(draftKey, "");
      returnFirstMessage(user.id, content, {
        error,
        personaId: sessionRef.current?.personaId,
        apiConfigId: sessionRef.current?.apiConfigId,
      });
      if (mounted.current) navigate({ name: "new" }, { replace: true });
      return true;
    },
    [api, id, draftKey, removeSession, sessionId, user.id],
  );

  const send = useCallback(
    async (content: string, first = false, versionOf?: string) => {
      reattachments.current = 0;
      const known = new Set(threadRef.current.messages.map((m) => m.id));
      const tempId = `pending-${Date.now()}`;
      dispatch({ type: "sendStarted", tempId, content, versionOf });
      // An edited question is not the composer's text: what is typed there stays.
      if (versionOf === undefined) setDraft("");
      const versionOfId = versionOf === undefined ? undefined : BigInt(versionOf);
      const result = await runStream((signal) => api.messages.sendMessage({ sessionId: id, content, versionOfId }, { signal }));
      if (!sessionRef.current?.title) refreshTitleLater();
      if (result.userStored) return;
      if (versionOf !== undefined) {
        // An edit that was not stored goes to the message box (when empty) with the error,
        // like a failed send; the view shows the branch as the server has it.
        if (result.messages && result.messages.some((m) => m.role === "user" && !known.has(m.id) && m.content === content)) return;
        dispatch({ type: "sendFailed", tempId, error: result.error ?? t("networkError") });
        if (mounted.current) setDraft((current) => (current === "" ? content : current));
        return;
      }
      // The stream ended before it said the message was stored; the server's list decides,
      // so a message it did store is not put back into the box to be sent twice.
      const isStored = (messages: ChatMessage[]) => messages.some((m) => m.role === "user" && !known.has(m.id) && m.content === content);
      const giveBack = () => {
        if (mounted.current) setDraft((current) => (current === "" ? content : current));
        else if (readDraft(draftKey) === "") writeDraft(draftKey, content);
      };
      if (result.messages === null) {
        // Abandoned (the view went away) or unreadable: check once more, keeping the text if unsure.
        loadMessages().then((messages) => !isStored(messages) && giveBack(), giveBack);
        return;
      }
      if (isStored(result.messages)) {
        // Nothing went wrong that the user needs to act on: the chat shows what was stored.
        dispatch({ type: "dismissError" });
        return;
      }
      const error = result.error ?? t("networkError");
      if (first && result.messages.length === 0 && (await abandonEmptyChat(content, error))) return;
      dispatch({ type: "sendFailed", tempId, error });
      giveBack();
    },
    [api, id, draftKey, loadMessages, runStream, refreshTitleLater, abandonEmptyChat, setDraft, t],
  );

  // Load the chat; re-attach to a generation still running (a reload mid-stream); send the
  // first message handed over by the new-chat page (it waits in the box until then).
  useEffect(() => {
    let cancelled = false;
    setLoadError(null);
    (async () => {
      try {
        // The page's first chat was asked for while the app's chunk loaded (app/preload.ts).
        const preloaded = takePreloadedChat(api, user.id, sessionId);
        // What this chat needed last time loads while its messages do.
        prefetchChatParts(sessionId);
        const contents = await (preloaded ??
          Promise.all([api.sessions.getSession({ id }), listAllMessages(api, id)]).then(([res, all]) => ({
            session: res.session,
            messages: all,
          })));
        const messages = contents.messages.map(fromProto);
        // The skeleton stays until the answers can show whole with their math (typesetting a
        // formula after it appeared would move the page under the reader); highlighting
        // only colours code, so it may follow.
        await prepareChat(
          sessionId,
          messages.map((m) => m.content),
        );
        if (cancelled) return;
        // A transition: rendering a long chat is split into short tasks (the page keeps
        // answering input meanwhile), and the skeleton stays until all of it is ready.
        startTransition(() => {
          if (contents.session) setSession(contents.session);
          dispatch({ type: "loaded", messages });
          setLoaded(true);
        });
        const streaming = streamingAnswer(messages);
        if (streaming) {
          void watch(streaming.id);
        } else if (isFirstMessage(sessionId)) {
          firstMessageSent(sessionId);
          const first = readDraft(draftKey).trim();
          if (first) void send(first, messages.length === 0);
        }
      } catch (err) {
        if (cancelled) return;
        const notFound = ConnectError.from(err).code === Code.NotFound;
        if (notFound) {
          // Whatever was typed for a chat that is gone moves to the new-chat page.
          const orphan = readDraft(draftKey);
          if (orphan && !readDraft(newChatDraftKey(user.id))) writeDraft(newChatDraftKey(user.id), orphan);
          writeDraft(draftKey, "");
          firstMessageSent(sessionId);
        }
        setLoadError({ message: notFound ? t("chatNotFound") : describeError(err, t), notFound });
      }
    })();
    return () => {
      cancelled = true;
    };
    // Only when the chat changes (or a failed load is retried); the callbacks are stable for one chat.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sessionId, loadAttempt]);

  useEffect(() => {
    if (!session) return;
    document.title = `${counterpart.title} · Parley`;
    return () => {
      document.title = "Parley";
    };
  }, [session, counterpart.title]);

  // Follow the newest text unless the user scrolled up.
  const { scroller, content, showJump, onScroll, onWheel, followLatest, jumpToLatest } = useStickToBottom([thread.messages]);

  const streamingId = thread.streamingId;
  const busy = running || streamingId !== null;

  const stop = () => {
    if (streamingId) void stopGeneration(streamingId);
    else if (running) {
      stopRequested.current = true;
      setStopping(true);
    }
  };

  // Stable callbacks, so the answers that do not change skip re-rendering while one streams.
  const regenerate = useCallback(
    async (messageId: string) => {
      reattachments.current = 0;
      dispatch({ type: "regenerateStarted", messageId });
      followLatest();
      await runStream((signal) => api.messages.regenerateMessage({ messageId: BigInt(messageId) }, { signal }));
    },
    [api, runStream, followLatest],
  );

  /** Answers a question that has no answer below it (its answer was deleted). */
  const answerAgain = useCallback(
    async (questionId: string) => {
      reattachments.current = 0;
      dispatch({ type: "dismissError" });
      followLatest();
      await runStream((signal) => api.messages.regenerateMessage({ messageId: BigInt(questionId) }, { signal }));
    },
    [api, runStream, followLatest],
  );

  const edit = useCallback(
    async (messageId: string, content: string): Promise<boolean> => {
      try {
        const res = await api.messages.updateMessage({ id: BigInt(messageId), content });
        if (res.message) dispatch({ type: "messageUpdated", message: fromProto(res.message) });
        return true;
      } catch (err) {
        dispatch({ type: "showError", error: describeError(err, t) });
        return false;
      }
    },
    [api],
  );

  /** An edited question goes out as a new version of it: a new branch from there, answered
   * anew; the old question and what followed it stay as the other version. */
  const sendVersion = useCallback(
    async (messageId: string, content: string): Promise<boolean> => {
      followLatest();
      void send(content.trim(), false, messageId);
      return true;
    },
    [send, followLatest],
  );

  /** Shows another version (and the branch that followed it); the server remembers it. */
  const switchVersion = useCallback(
    async (messageId: string) => {
      try {
        const res = await api.messages.switchBranch({ messageId: BigInt(messageId), pageSize: 100 });
        const messages = res.nextPageToken ? await listAllMessages(api, id) : res.messages;
        await prepareChat(
          sessionId,
          messages.map((m) => m.content),
        );
        if (mounted.current) dispatch({ type: "loaded", messages: messages.map(fromProto) });
      } catch (err) {
        dispatch({ type: "showError", error: describeError(err, t) });
      }
    },
    [api, id, sessionId, t],
  );

  const remove = async (messageId: string) => {
    try {
      await api.messages.deleteMessage({ id: BigInt(messageId) });
      dispatch({ type: "messageDeleted", id: messageId });
    } catch (err) {
      dispatch({ type: "showError", error: describeError(err, t) });
    }
  };

  const last = lastAssistant(thread);
  const visible = thread.messages.filter((m) => m.role !== "system");
  const lastMessage = visible[visible.length - 1];
  // A newest question without an answer (its answer was deleted) can be answered again.
  const unanswered = lastMessage?.role === "user" && !lastMessage.pending ? lastMessage : undefined;

  // Keyboard (listed in the shortcuts dialog): Esc stops the answer, Alt+Shift+R answers the
  // newest question anew, Shift+Esc goes to the message box. Read through a ref, so the one
  // listener always acts on the chat as it is now.
  const shortcuts = useRef({ stop: () => {}, regenerateLast: () => {} });
  shortcuts.current = {
    stop: () => {
      if (busy && !stopping) stop();
    },
    regenerateLast: () => {
      if (busy) return;
      if (last && last.id === lastMessage?.id) void regenerate(last.id);
      else if (unanswered) void answerAgain(unanswered.id);
    },
  };
  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      // An Escape that closed an editor, a dialog or a menu was theirs.
      if (e.defaultPrevented || (e.target instanceof Element && e.target.closest("dialog, [role=dialog], [role=menu]"))) return;
      if (e.key === "Escape" && e.shiftKey) {
        e.preventDefault();
        document.getElementById("composer")?.focus();
      } else if (e.key === "Escape") {
        shortcuts.current.stop();
      } else if (e.altKey && e.shiftKey && e.code === "KeyR") {
        e.preventDefault();
        shortcuts.current.regenerateLast();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  // An ended chat is read-only until reopened (the server refuses writes to it too).
  const ended = session?.endTime !== undefined;
  const { locale } = useLocale();
  const reopen = async () => {
    try {
      const res = await api.sessions.updateSession({ id, ended: false, updateMask: { paths: ["ended"] } });
      if (res.session) onSessionChanged(res.session);
    } catch (err) {
      dispatch({ type: "showError", error: describeError(err, t) });
    }
  };

  const composer = (
    <Composer
      readOnly={ended}
      value={draft}
      onChange={slash.onChange}
      onSend={() => {
        followLatest();
        void send(draft.trim());
      }}
      onStop={stop}
      stopping={stopping}
      streaming={busy}
      disabled={!session || !loaded || ended}
      placeholder={ended ? t("chatEndedPlaceholder") : t("messagePlaceholder", { name: counterpart.name })}
      autoFocus
      onKeyDownFirst={slash.onKeyDownFirst}
      inputAria={slash.inputAria}
      suggestions={
        <>
          {slash.suggestions}
          {slash.dialog}
        </>
      }
    />
  );

  if (loadError) {
    return (
      <>
        <ChatHeader title={loadError.notFound ? t("appName") : counterpart.name} onOpenSidebar={onOpenSidebar} />
        <div className="flex flex-1 flex-col items-center justify-center gap-3 p-6">
          <p role="alert" className="alert-error" data-testid="chat-load-error">
            {loadError.message}
          </p>
          {loadError.notFound ? (
            <button type="button" className="btn-secondary" onClick={() => navigate({ name: "new" })}>
              {t("newChat")}
            </button>
          ) : (
            <button type="button" className="btn-secondary" onClick={() => setLoadAttempt((n) => n + 1)}>
              {t("retry")}
            </button>
          )}
        </div>
        {/* What was typed stays in view, ready once the chat loads. */}
        {!loadError.notFound && composer}
      </>
    );
  }

  return (
    <>
      <ChatHeader
        // The persona's name and the model show once both the chat and the personas and
        // configs are in, not a default first: text replaced in place would move.
        title={headerKnown ? counterpart.name : ""}
        subtitle={
          session && headerKnown ? (
            <ModelPicker session={session} model={counterpart.model} onChanged={onSessionChanged} />
          ) : (
            <span data-testid="header-model" />
          )
        }
        onOpenSidebar={onOpenSidebar}
        right={
          session && (
            <div className="flex">
              <ChatSettingsButton session={session} onChanged={onSessionChanged} />
              <SessionMenu session={session} onChanged={setSession} />
            </div>
          )
        }
      />
      <div className="relative min-h-0 flex-1">
        <div ref={scroller} onScroll={onScroll} onWheel={onWheel} className="h-full overflow-y-auto bg-white" data-testid="message-list">
          <div ref={content} className="mx-auto flex max-w-3xl flex-col gap-6 px-4 py-6 sm:px-6" aria-busy={busy || !loaded}>
            {!loaded && <SkeletonMessages />}
            {session?.systemPrompt && (
              <details className="rounded-lg border border-dashed border-gray-300 px-3 py-2 text-sm text-gray-600">
                <summary className="cursor-pointer">{t("systemPrompt")}</summary>
                <p className="mt-2 whitespace-pre-wrap">{session.systemPrompt}</p>
              </details>
            )}
            {visible.map((m) => (
              <MessageItem
                key={m.id}
                message={m}
                streaming={m.id === streamingId}
                canRegenerate={(m.role === "assistant" && m.id === last?.id && m.id === lastMessage?.id) || m.id === unanswered?.id}
                busy={busy || ended}
                assistantName={counterpart.name}
                userName={user.displayName || user.username}
                userAvatar={user.avatarUrl}
                onRegenerate={m.id === unanswered?.id ? answerAgain : regenerate}
                onEdit={edit}
                onSendVersion={sendVersion}
                onSwitchVersion={switchVersion}
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
      {ended && session && (
        <div
          role="status"
          className="mx-auto flex w-full max-w-3xl flex-wrap items-center justify-between gap-2 px-4 pt-2 text-sm text-gray-600"
          data-testid="chat-ended"
        >
          <span>{t("chatEndedNotice", { date: formatTime(session.endTime, locale) ?? "" })}</span>
          <button type="button" className="btn-secondary px-3 py-1" onClick={() => void reopen()}>
            {t("reopenChat")}
          </button>
        </div>
      )}
      {composer}
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
