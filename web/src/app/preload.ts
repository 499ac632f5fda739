// What a page load starts before React has rendered anything, on a device that was signed in
// last time (a flag in localStorage, nothing more): the session is restored from the refresh
// cookie, the app's chunk is fetched and, on a chat's address, the chat's messages and the
// Markdown parts it needed last time (math, grammars) are asked for as soon as the session is
// back, side by side with the app's chunk instead of one after the other once it has run.
// A device with no such flag (the sign-in page) starts nothing here and fetches nothing more.
import type { Api } from "../api/client";
import type { SignedIn } from "../auth/tokens";
import type { User } from "../gen/parley/user/v1/user_pb";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import type { Message } from "../gen/parley/chat/v1/message_pb";
import { prefetchChatParts } from "../markdown/parts";
import { parseRoute } from "./router";

export const loadSignedIn = () => import("./SignedIn");

const signedInHint = "parley.signedIn";

/** Whether this device was signed in when last seen (the session itself is the cookie's). */
export function wasSignedIn(): boolean {
  try {
    return localStorage.getItem(signedInHint) !== null;
  } catch {
    // Storage off: the app's chunk is fetched once the session is known.
    return false;
  }
}

export function rememberSignedIn(signedIn: boolean): void {
  try {
    if (signedIn) localStorage.setItem(signedInHint, "1");
    else localStorage.removeItem(signedInHint);
  } catch {
    // As above.
  }
}

/** Every message of a chat, oldest first, page by page (as ListMessages pages them). */
export async function listAllMessages(api: Api, sessionId: bigint): Promise<Message[]> {
  const all: Message[] = [];
  let pageToken = "";
  for (let page = 0; page < 100; page++) {
    const res = await api.messages.listMessages({ sessionId, pageSize: 100, pageToken });
    all.push(...res.messages);
    pageToken = res.nextPageToken;
    if (!pageToken) break;
  }
  return all;
}

export interface ChatContents {
  session: Session | undefined;
  messages: Message[];
}

let restore: { api: Api; session: Promise<SignedIn<User> | null> } | null = null;
let chat: { api: Api; userId: bigint; sessionId: string; contents: Promise<ChatContents> } | null = null;

/** Starts what this page will need (see above); call once, before the first render. */
export function startPreload(api: Api, path: string = window.location.pathname): void {
  // A shared chat (/s/<token>) is read signed out: it needs none of this.
  if (!wasSignedIn() || path.startsWith("/s/")) return;
  void loadSignedIn().catch(() => {});
  const route = parseRoute(path);
  if (route.name === "chat") prefetchChatParts(route.id);
  const session = api.tokens.refresh();
  restore = { api, session };
  // Signed out meanwhile (here or in another tab): nothing fetched for the session is kept.
  api.tokens.subscribe((user) => {
    if (!user || user.id !== chat?.userId) chat = null;
  });
  session.then(
    (signedIn) => {
      if (!signedIn || route.name !== "chat") return;
      const id = BigInt(route.id);
      const contents = Promise.all([api.sessions.getSession({ id }), listAllMessages(api, id)]).then(([res, messages]) => ({
        session: res.session,
        messages,
      }));
      // Whoever takes it handles a failure; until then it is not an unhandled one.
      contents.catch(() => {});
      chat = { api, userId: signedIn.user.id, sessionId: route.id, contents };
    },
    // The sign-in gate takes this same answer and handles it.
    () => {},
  );
}

/** The session restore `startPreload` started, for the sign-in gate's first check; once. */
export function takeRestore(api: Api): Promise<SignedIn<User> | null> | null {
  const started = restore;
  restore = null;
  return started && started.api === api ? started.session : null;
}

/** The chat `startPreload` fetched, when it is this chat of this user; once (the first chat
 * view takes it or drops it), so it is never shown stale. */
export function takePreloadedChat(api: Api, userId: bigint, sessionId: string): Promise<ChatContents> | null {
  const preloaded = chat;
  chat = null;
  return preloaded && preloaded.api === api && preloaded.userId === userId && preloaded.sessionId === sessionId ? preloaded.contents : null;
}
