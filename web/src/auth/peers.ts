import type { TokenManager } from "./tokens";

// The tabs of one browser share the refresh cookie, so they share the session too: signing
// out in one signs the others out, and signing in in one signs in the others.

type PeerMessage = { type: "signedIn" } | { type: "signedOut" };

export interface TabPeers {
  /** Tells the other tabs this one just signed in. */
  signedIn(): void;
  /** Tells the other tabs this one just signed out. */
  signedOut(): void;
  close(): void;
}

export function linkTabs<U>(tokens: TokenManager<U>, channelName = "parley-auth"): TabPeers {
  if (typeof BroadcastChannel === "undefined") return { signedIn() {}, signedOut() {}, close() {} };
  const channel = new BroadcastChannel(channelName);
  channel.onmessage = (event: MessageEvent<PeerMessage>) => {
    if (event.data?.type === "signedOut" && tokens.currentToken() !== null) tokens.signedOut("elsewhere");
    // The cookie now names the account that signed in there (perhaps another one).
    if (event.data?.type === "signedIn") tokens.refresh().catch(() => {});
  };
  const post = (message: PeerMessage) => channel.postMessage(message);
  return {
    signedIn: () => post({ type: "signedIn" }),
    signedOut: () => post({ type: "signedOut" }),
    close: () => channel.close(),
  };
}
