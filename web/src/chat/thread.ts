// The message history of one chat, and how the events of a generation change it. Pure, so the
// order-dependent parts (a regenerated answer taking the old one's place, a reload replaying
// the text so far, an error in the middle) are unit tested without a server.

import type { ChatEvent, Message } from "../gen/parley/chat/v1/message_pb";
import { MessageRole, MessageStatus } from "../gen/parley/chat/v1/message_pb";

export type Role = "system" | "user" | "assistant";
export type Status = "complete" | "streaming" | "stopped" | "failed";

export interface ChatMessage {
  id: string;
  role: Role;
  content: string;
  reasoning: string;
  status: Status;
  model: string;
  /** The API config (or shared connection) an answer was written with, as it was named then. */
  apiConfigName?: string;
  /** The chat's persona when an answer was written, as it was then ("" when none). */
  personaName?: string;
  personaAvatar?: string;
  error: string;
  /** For a FAILED answer: the google.rpc.Code and the stable reason of its failure (0 and ""
   * when unknown), which the UI words in its own language. */
  errorCode: number;
  errorReason: string;
  /** A user message shown while SendMessage has not yet stored it. */
  pending?: boolean;
  /** The versions at this message's place in the chat's tree (oldest first, this one among
   * them), as the server last listed them: more than one shows a "‹ 2/3 ›" switcher. */
  siblingIds?: string[];
  promptTokens?: number;
  completionTokens?: number;
}

export interface ThreadState {
  messages: ChatMessage[];
  /** The assistant message being written, while a generation runs. */
  streamingId: string | null;
  /** The answer a regeneration will replace, kept aside until the new one completes. */
  replaced: ChatMessage | null;
  replacingId: string | null;
  /** The last failure, shown in place until dismissed or the next send. */
  error: string | null;
}

export const emptyThread: ThreadState = {
  messages: [],
  streamingId: null,
  replaced: null,
  replacingId: null,
  error: null,
};

export type ThreadAction =
  | { type: "loaded"; messages: ChatMessage[]; keepError?: boolean }
  /** With `versionOf`, the question is a new version of that earlier one: the view drops it
   * and everything after it (the server keeps them as the other branch). */
  | { type: "sendStarted"; tempId: string; content: string; versionOf?: string }
  | { type: "sendFailed"; tempId: string; error: string }
  | { type: "regenerateStarted"; messageId: string }
  | { type: "watchStarted"; messageId: string }
  | { type: "event"; event: ChatEvent }
  /** Several events at once (the deltas of one frame): one state change, one render. */
  | { type: "events"; events: ChatEvent[] }
  | { type: "streamEnded" }
  | { type: "streamFailed"; error: string }
  | { type: "messageUpdated"; message: ChatMessage }
  | { type: "messageDeleted"; id: string }
  | { type: "showError"; error: string }
  | { type: "dismissError" };

const roles: Record<number, Role> = {
  [MessageRole.SYSTEM]: "system",
  [MessageRole.USER]: "user",
  [MessageRole.ASSISTANT]: "assistant",
};

const statuses: Record<number, Status> = {
  [MessageStatus.COMPLETE]: "complete",
  [MessageStatus.STREAMING]: "streaming",
  [MessageStatus.STOPPED]: "stopped",
  [MessageStatus.FAILED]: "failed",
};

export function fromProto(m: Message): ChatMessage {
  return {
    id: m.id.toString(),
    role: roles[m.role] ?? "assistant",
    content: m.content,
    reasoning: m.reasoning,
    status: statuses[m.status] ?? "complete",
    model: m.model,
    apiConfigName: m.apiConfigName,
    personaName: m.personaName,
    personaAvatar: m.personaAvatar,
    error: m.error,
    errorCode: m.errorCode,
    errorReason: m.errorReason,
    promptTokens: m.usage ? Number(m.usage.promptTokens) : undefined,
    completionTokens: m.usage ? Number(m.usage.completionTokens) : undefined,
    siblingIds: m.siblingIds.length > 1 ? m.siblingIds.map((id) => id.toString()) : undefined,
  };
}

function upsert(messages: ChatMessage[], message: ChatMessage): ChatMessage[] {
  const index = messages.findIndex((m) => m.id === message.id);
  if (index < 0) return [...messages, message];
  const next = messages.slice();
  next[index] = message;
  return next;
}

function patch(messages: ChatMessage[], id: string | null, change: (m: ChatMessage) => ChatMessage): ChatMessage[] {
  if (id === null) return messages;
  return messages.map((m) => (m.id === id ? change(m) : m));
}

function applyEvent(state: ThreadState, event: ChatEvent): ThreadState {
  const e = event.event;
  switch (e.case) {
    case "userMessage": {
      const stored = fromProto(e.value);
      const pending = state.messages.findIndex((m) => m.pending);
      if (pending >= 0 && !state.messages.some((m) => m.id === stored.id)) {
        const messages = state.messages.slice();
        messages[pending] = stored;
        return { ...state, messages };
      }
      return { ...state, messages: upsert(state.messages, stored) };
    }
    case "assistantStarted": {
      const started = fromProto(e.value);
      const existing = state.messages.find((m) => m.id === started.id);
      // A re-attached watch replays the text so far: the row's content, then deltas.
      const message = existing ? { ...existing, ...started } : started;
      if (state.replacingId !== null && !existing) {
        const index = state.messages.findIndex((m) => m.id === state.replacingId);
        if (index >= 0) {
          const messages = state.messages.slice();
          const replaced = messages[index];
          messages[index] = message;
          return { ...state, messages, replaced, streamingId: message.id };
        }
      }
      return { ...state, messages: upsert(state.messages, message), streamingId: message.id };
    }
    case "delta":
      return {
        ...state,
        messages: patch(state.messages, state.streamingId, (m) => ({ ...m, content: m.content + e.value })),
      };
    case "reasoningDelta":
      return {
        ...state,
        messages: patch(state.messages, state.streamingId, (m) => ({ ...m, reasoning: m.reasoning + e.value })),
      };
    case "completed": {
      const done = fromProto(e.value);
      return {
        ...state,
        messages: upsert(state.messages, done),
        streamingId: null,
        replaced: null,
        replacingId: null,
      };
    }
    case "error": {
      const text = e.value.message || "generation failed";
      // Shown on the answer it belongs to; only an error with no answer to carry it (the
      // generation never started) goes to the chat-wide notice.
      const onAnswer = state.streamingId !== null && state.messages.some((m) => m.id === state.streamingId);
      return {
        ...state,
        messages: patch(state.messages, state.streamingId, (m) => ({
          ...m,
          status: "failed",
          error: text,
          errorCode: e.value.code,
          errorReason: e.value.reason,
        })),
        streamingId: null,
        replacingId: null,
        error: onAnswer ? state.error : text,
      };
    }
    default:
      // session_updated is the chat's, not the history's; unknown events are ignored.
      return state;
  }
}

export function threadReducer(state: ThreadState, action: ThreadAction): ThreadState {
  switch (action.type) {
    case "loaded":
      return {
        ...emptyThread,
        messages: action.messages,
        streamingId: streamingAnswer(action.messages)?.id ?? null,
        error: action.keepError ? state.error : null,
      };
    case "sendStarted": {
      const fork = action.versionOf === undefined ? -1 : state.messages.findIndex((m) => m.id === action.versionOf);
      return {
        ...state,
        error: null,
        messages: [
          ...(fork < 0 ? state.messages : state.messages.slice(0, fork)),
          {
            id: action.tempId,
            role: "user",
            content: action.content,
            reasoning: "",
            status: "complete",
            model: "",
            error: "",
            errorCode: 0,
            errorReason: "",
            pending: true,
          },
        ],
      };
    }
    case "sendFailed":
      return {
        ...state,
        messages: state.messages.filter((m) => m.id !== action.tempId),
        error: action.error,
      };
    case "regenerateStarted":
      return { ...state, error: null, replacingId: action.messageId };
    case "watchStarted":
      return {
        ...state,
        streamingId: action.messageId,
        messages: patch(state.messages, action.messageId, (m) => ({ ...m, content: "", reasoning: "" })),
      };
    case "event":
      return applyEvent(state, action.event);
    case "events":
      return action.events.reduce(applyEvent, state);
    case "streamEnded":
    case "streamFailed": {
      // A stream that ended without `completed` (connection lost, stopped elsewhere): the
      // server keeps the row; the view reloads it. A regeneration that never started leaves
      // the old answer where it was.
      const messages = state.replaced !== null && state.streamingId !== null ? state.messages : state.messages.filter((m) => !m.pending);
      return {
        ...state,
        messages,
        streamingId: null,
        replacingId: null,
        error: action.type === "streamFailed" ? action.error : state.error,
      };
    }
    case "messageUpdated": {
      // Only lists carry a message's versions: an edited or stopped one keeps what was listed.
      const listed = state.messages.find((m) => m.id === action.message.id);
      return { ...state, messages: upsert(state.messages, { ...action.message, siblingIds: listed?.siblingIds }) };
    }
    case "messageDeleted":
      return { ...state, messages: state.messages.filter((m) => m.id !== action.id) };
    case "showError":
      // A failed edit, delete or stop: reported, while any generation goes on.
      return { ...state, error: action.error };
    case "dismissError":
      return { ...state, error: null };
  }
}

/** The newest assistant answer: the one Regenerate and Stop act on. */
export function lastAssistant(state: ThreadState): ChatMessage | undefined {
  return [...state.messages].reverse().find((m) => m.role === "assistant");
}

/** The answer still being written in `messages` (a chat has at most one), if any: the one a
 * reloaded view follows again. */
export function streamingAnswer(messages: ChatMessage[]): ChatMessage | undefined {
  return messages.findLast((m) => m.role === "assistant" && m.status === "streaming");
}
