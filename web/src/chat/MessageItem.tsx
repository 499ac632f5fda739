import { memo, useState } from "react";
import type { ChatMessage } from "./thread";
import { Markdown } from "../markdown/Markdown";
import { useT } from "../i18n";
import { copyText } from "../ui/clipboard";
import { CheckIcon, CopyIcon, EditIcon, RefreshIcon, TrashIcon } from "../ui/icons";
import { Avatar } from "../ui/Avatar";
import { chatFailure, describeFailure } from "../ui/errorText";
import { VersionSwitcher } from "./VersionSwitcher";
import { useLibraryT } from "../library/strings";

export const MessageItem = memo(function MessageItem({
  message,
  streaming,
  canRegenerate,
  busy,
  assistantName,
  userName,
  userAvatar,
  onRegenerate,
  onEdit,
  onSendVersion,
  onSwitchVersion,
  onDelete,
}: {
  message: ChatMessage;
  streaming: boolean;
  canRegenerate: boolean;
  busy: boolean;
  assistantName: string;
  userName: string;
  userAvatar: string;
  onRegenerate: (id: string) => void;
  /** An answer's edit, saved in place. */
  onEdit: (id: string, content: string) => Promise<boolean>;
  /** A question's edit: sent as a new version of it, answered anew; the old one stays as the
   * other version (a branch), so nothing below it is rewritten. */
  onSendVersion: (id: string, content: string) => Promise<boolean>;
  onSwitchVersion: (id: string) => void;
  onDelete: (id: string) => void;
}) {
  const t = useT();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.content);
  const [copied, setCopied] = useState(false);
  const isUser = message.role === "user";

  const copy = async () => {
    if (await copyText(message.content)) {
      setCopied(true);
      window.setTimeout(() => setCopied(false), 1500);
    }
  };

  // Where a pointer can hover, an answer's actions show on hover or keyboard focus (the newest
  // one's always); on touch screens, always.
  const actions = !message.pending && !streaming && !editing && (
    <div
      role="toolbar"
      aria-label={t("messageActions")}
      data-testid="message-actions"
      className={`mt-1 flex gap-0.5 text-gray-500 transition-opacity ${isUser ? "justify-end" : ""} ${
        canRegenerate ? "" : "[@media(hover:hover)]:opacity-0 [@media(hover:hover)]:group-hover:opacity-100 focus-within:opacity-100"
      }`}
    >
      <button type="button" className="btn-ghost" onClick={copy} aria-label={t("copyMessage")} title={t("copyMessage")}>
        {copied ? <CheckIcon /> : <CopyIcon />}
      </button>
      <button
        type="button"
        className="btn-ghost"
        disabled={busy}
        onClick={() => {
          setDraft(message.content);
          setEditing(true);
        }}
        aria-label={t("edit")}
        title={t("edit")}
      >
        <EditIcon />
      </button>
      {canRegenerate && (
        <button
          type="button"
          className="btn-ghost"
          disabled={busy}
          onClick={() => onRegenerate(message.id)}
          aria-label={isUser ? t("answerAgain") : t("regenerate")}
          title={isUser ? t("answerAgain") : t("regenerate")}
        >
          <RefreshIcon />
        </button>
      )}
      <button
        type="button"
        className="btn-ghost"
        disabled={busy}
        onClick={() => onDelete(message.id)}
        aria-label={t("delete")}
        title={t("delete")}
      >
        <TrashIcon />
      </button>
    </div>
  );

  const save = async () => {
    if (!draft.trim() || (isUser && busy)) return;
    const saved = isUser ? await onSendVersion(message.id, draft) : await onEdit(message.id, draft);
    if (saved) setEditing(false);
  };

  const versions = message.siblingIds && !message.pending && (
    <VersionSwitcher ids={message.siblingIds} currentId={message.id} disabled={busy || streaming} onSwitch={onSwitchVersion} />
  );

  const editor = editing && (
    <form
      className="w-full"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <label className="sr-only" htmlFor={`edit-${message.id}`}>
        {t("edit")}
      </label>
      <textarea
        id={`edit-${message.id}`}
        className="input min-h-28 font-[inherit]"
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            setEditing(false);
          } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.nativeEvent.isComposing) {
            e.preventDefault();
            void save();
          }
        }}
        aria-describedby={`edit-hint-${message.id}`}
        autoFocus
      />
      <div className="mt-2 flex flex-wrap items-center justify-end gap-2">
        <span id={`edit-hint-${message.id}`} className="mr-auto hidden text-xs text-gray-500 sm:inline">
          {isUser ? t("editQuestionHint") : t("editHint")}
        </span>
        <button type="button" className="btn-secondary" onClick={() => setEditing(false)}>
          {t("cancel")}
        </button>
        <button type="submit" className="btn-primary" disabled={!draft.trim() || (isUser && busy)}>
          {isUser ? t("sendEdit") : t("save")}
        </button>
      </div>
    </form>
  );

  if (isUser) {
    return (
      <article className="group flex justify-end gap-3" data-role="user" data-message-id={message.id} aria-label={userName}>
        <div className={`flex max-w-[85%] flex-col items-end ${editing ? "w-full" : ""}`}>
          {editing ? (
            editor
          ) : (
            <div
              className={`whitespace-pre-wrap break-words rounded-2xl bg-gray-100 px-4 py-2.5 text-[15px] ${message.pending ? "opacity-60" : ""}`}
            >
              {message.content}
            </div>
          )}
          {!editing && (versions || actions) && (
            <div className="flex flex-wrap items-center justify-end gap-1">
              {versions}
              {actions}
            </div>
          )}
        </div>
        <div className="hidden sm:block">
          <Avatar name={userName} url={userAvatar} size={30} />
        </div>
      </article>
    );
  }

  const empty = message.content === "" && message.reasoning === "";
  // An answer is signed by the persona it was written as (kept when the persona changes).
  const author = message.personaName || assistantName;
  return (
    <article
      className="group flex gap-3"
      data-role="assistant"
      data-message-id={message.id}
      data-status={message.status}
      aria-label={author}
      aria-busy={streaming}
    >
      <span
        aria-hidden="true"
        className="mt-0.5 hidden h-[30px] w-[30px] shrink-0 items-center justify-center rounded-full bg-black text-xs font-semibold text-[#fff] sm:flex"
        data-testid="answer-avatar"
      >
        {message.personaAvatar || (author.trim()[0] ?? "A").toUpperCase()}
      </span>
      <div className="min-w-0 flex-1">
        {message.reasoning && (
          <details className="mb-2 rounded-lg border border-gray-200 bg-gray-50 text-sm" data-testid="reasoning">
            <summary className="cursor-pointer select-none px-3 py-1.5 text-gray-600">
              {streaming && !message.content ? t("thinking") : t("reasoning")}
            </summary>
            <div className="whitespace-pre-wrap border-t border-gray-200 px-3 py-2 text-gray-600">{message.reasoning}</div>
          </details>
        )}
        {editing ? (
          editor
        ) : (
          <div className="message-content" data-testid="assistant-content">
            {empty && streaming ? (
              <span className="inline-flex gap-1 py-2" aria-label={t("thinking")}>
                <span className="h-2 w-2 animate-bounce rounded-full bg-gray-400" />
                <span className="h-2 w-2 animate-bounce rounded-full bg-gray-400 [animation-delay:150ms]" />
                <span className="h-2 w-2 animate-bounce rounded-full bg-gray-400 [animation-delay:300ms]" />
              </span>
            ) : (
              <Markdown text={message.content} streaming={streaming} />
            )}
            {streaming && !empty && (
              <span className="ml-0.5 inline-block h-4 w-2 animate-pulse bg-gray-800 align-middle" aria-hidden="true" />
            )}
          </div>
        )}
        {message.status === "stopped" && (
          <p className="mt-1 text-xs text-gray-500" data-testid="status-stopped">
            {t("stopped")}
            {message.error && `: ${message.error}`}
          </p>
        )}
        {/* A complete answer with a note: it was cut (e.g. at the maximum answer size). */}
        {message.status === "complete" && message.error && (
          <p className="mt-1 text-xs text-amber-700" data-testid="status-note">
            {t("answerCut")}: {message.error}
          </p>
        )}
        {message.status === "failed" && (
          <div role="alert" className="alert-error mt-2 flex flex-wrap items-center justify-between gap-2">
            <FailureText message={message} />
            {canRegenerate && (
              <button
                type="button"
                className="shrink-0 font-medium underline disabled:opacity-50"
                disabled={busy}
                onClick={() => onRegenerate(message.id)}
              >
                {t("retry")}
              </button>
            )}
          </div>
        )}
        {!streaming && <AnswerMeta message={message} />}
        {versions || actions ? (
          <div className="flex flex-wrap items-center gap-1">
            {versions}
            {actions}
          </div>
        ) : null}
      </div>
    </article>
  );
});

/** Which model (and config) wrote an answer; its token usage on hover or focus (always on
 * touch screens, and for screen readers). */
function AnswerMeta({ message }: { message: ChatMessage }) {
  const t = useT();
  const usage =
    message.completionTokens !== undefined ? t("tokens", { prompt: message.promptTokens ?? 0, completion: message.completionTokens }) : "";
  if (!message.model && !usage && !message.personaName) return null;
  const writer = message.apiConfigName ? t("answeredBy", { model: message.model, config: message.apiConfigName }) : message.model;
  return (
    <p className="mt-1 flex flex-wrap gap-x-2 text-xs text-gray-500" data-testid="answer-meta" tabIndex={usage ? 0 : undefined}>
      {message.personaName && <AnswerPersona message={message} />}
      {writer && <span data-testid="answer-model">{writer}</span>}
      {usage && (
        <span
          data-testid="answer-usage"
          className="[@media(hover:hover)]:opacity-0 [@media(hover:hover)]:group-hover:opacity-100 [@media(hover:hover)]:group-focus-within:opacity-100"
        >
          {usage}
        </span>
      )}
    </p>
  );
}

/** The persona an answer was written as, with its avatar then. */
function AnswerPersona({ message }: { message: ChatMessage }) {
  const lt = useLibraryT();
  return (
    <span data-testid="answer-persona">
      {message.personaAvatar && <span aria-hidden="true">{message.personaAvatar} </span>}
      {lt("answeredAs", { persona: message.personaName ?? "" })}
    </span>
  );
}

/** Why an answer failed, in the UI's language; the server's own words one click away. */
function FailureText({ message }: { message: ChatMessage }) {
  const t = useT();
  const sentence = describeFailure(chatFailure({ code: message.errorCode, reason: message.errorReason, message: message.error || "—" }), t);
  return (
    <span className="min-w-0 break-words" data-testid="failure-text">
      {t("failed")}: {sentence}
      {message.error && message.error !== sentence && (
        <details className="mt-1 text-xs opacity-80">
          <summary className="cursor-pointer select-none">{t("errorDetails")}</summary>
          <span className="break-words">{message.error}</span>
        </details>
      )}
    </span>
  );
}
