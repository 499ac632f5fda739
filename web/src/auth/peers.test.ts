import { afterEach, describe, expect, it, vi } from "vitest";
import { linkTabs, type TabPeers } from "./peers";
import { TokenManager, type SignedIn } from "./tokens";

const session = (n: number): SignedIn<string> => ({ user: "alice", accessToken: `token-${n}`, expiresIn: 900 });

let opened: TabPeers[] = [];
afterEach(() => {
  for (const peers of opened) peers.close();
  opened = [];
});

/** Two tabs of one browser: each its own TokenManager, linked over one BroadcastChannel name. */
function twoTabs(refreshB: () => Promise<SignedIn<string> | null> = async () => null) {
  const name = `parley-auth-test-${Math.random()}`;
  const a = new TokenManager<string>(async () => null);
  const b = new TokenManager<string>(refreshB);
  const peersA = linkTabs(a, name);
  const peersB = linkTabs(b, name);
  opened.push(peersA, peersB);
  return { a, b, peersA };
}

describe("linkTabs", () => {
  it("signs the other tabs out when one signs out", async () => {
    const { a, b, peersA } = twoTabs();
    a.signedIn(session(1));
    b.signedIn(session(2));
    const reasons: (string | undefined)[] = [];
    b.subscribe((user, reason) => reasons.push(user === null ? reason : "signed in"));
    a.signedOut("requested");
    peersA.signedOut();
    await vi.waitFor(() => expect(b.currentToken()).toBeNull());
    expect(reasons).toEqual(["elsewhere"]);
  });

  it("signs a signed-out tab in from the cookie when another tab signs in", async () => {
    const refreshB = vi.fn(async () => session(3));
    const { a, b, peersA } = twoTabs(refreshB);
    a.signedIn(session(1));
    peersA.signedIn();
    await vi.waitFor(() => expect(b.currentToken()).toBe("token-3"));
    expect(refreshB).toHaveBeenCalledTimes(1);
  });
});
