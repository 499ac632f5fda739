import { createApi, type Api } from "../api/client";

// One client for the page's lifetime: it holds the in-memory access token.
export const api: Api = createApi();

let signOutRequested = false;

/** Revokes the refresh cookie and forgets the access token. */
export async function signOut(): Promise<void> {
  signOutRequested = true;
  try {
    await api.publicUsers.logout({ refreshToken: "" });
  } finally {
    api.tokens.signedOut();
  }
}

/** Whether the last sign-out was the user's own (not an expired session); reading it resets it. */
export function takeSignOutRequested(): boolean {
  const requested = signOutRequested;
  signOutRequested = false;
  return requested;
}
