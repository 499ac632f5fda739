import { useCallback, useState } from "react";

// What the user typed and has not sent, per chat (and one for the new-chat page), kept in
// sessionStorage: switching chats, a reload or a failed page load never loses it. Sending
// clears it. Keys name the account, so another account signing in on this tab never sees
// it; signing out clears them all. Where storage is unavailable (some private modes) it
// lasts for this page.

const prefix = "parley.draft.";
const fallback = new Map<string, string>();

export type DraftKey = `${string}:new` | `${string}:chat:${string}`;

export const newChatDraftKey = (userId: bigint): DraftKey => `${userId}:new`;
export const chatDraftKey = (userId: bigint, sessionId: string): DraftKey => `${userId}:chat:${sessionId}`;

export function readDraft(key: DraftKey): string {
  try {
    return sessionStorage.getItem(prefix + key) ?? "";
  } catch {
    return fallback.get(key) ?? "";
  }
}

export function writeDraft(key: DraftKey, text: string): void {
  try {
    if (text === "") sessionStorage.removeItem(prefix + key);
    else sessionStorage.setItem(prefix + key, text);
  } catch {
    if (text === "") fallback.delete(key);
    else fallback.set(key, text);
  }
}

/** Forgets every draft in this tab (on sign-out). */
export function clearDrafts(): void {
  fallback.clear();
  try {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(prefix)) sessionStorage.removeItem(key);
  } catch {
    // No storage: nothing was stored there.
  }
}

/** The draft of `key` as state: every change is stored as it is typed. */
export function useDraft(key: DraftKey): [string, (next: string | ((current: string) => string)) => void] {
  const [draft, setDraftState] = useState(() => readDraft(key));
  const setDraft = useCallback(
    (next: string | ((current: string) => string)) =>
      setDraftState((current) => {
        const value = typeof next === "function" ? next(current) : next;
        writeDraft(key, value);
        return value;
      }),
    [key],
  );
  return [draft, setDraft];
}

// The new-chat page creates the session, puts the first message into that chat's draft and
// opens it; the chat view sends the draft once it has loaded (and, if loading fails, it is
// still in the box).
const autoSend = new Set<string>();

export function handOverFirstMessage(userId: bigint, sessionId: string, content: string): void {
  writeDraft(chatDraftKey(userId, sessionId), content);
  autoSend.add(sessionId);
}

/** Whether this chat's draft is a first message waiting to be sent. */
export function isFirstMessage(sessionId: string): boolean {
  return autoSend.has(sessionId);
}

/** The first message is on its way: a later load of the chat does not send it again. */
export function firstMessageSent(sessionId: string): void {
  autoSend.delete(sessionId);
}

// A first message the server refused before storing anything: the empty chat is deleted and
// the new-chat page shows the error, with the text back in its box and the same choices.
export interface RefusedFirstMessage {
  error: string;
  personaId?: bigint;
  apiConfigId?: bigint;
}

let refused: RefusedFirstMessage | null = null;

export function returnFirstMessage(userId: bigint, content: string, details: RefusedFirstMessage): void {
  writeDraft(newChatDraftKey(userId), content);
  refused = details;
}

export function refusedFirstMessage(): RefusedFirstMessage | null {
  return refused;
}

/** The new-chat page has shown it. */
export function forgetRefusedFirstMessage(): void {
  refused = null;
}
