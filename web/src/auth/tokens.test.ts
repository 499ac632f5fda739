import { describe, expect, it, vi } from "vitest";
import { backoffMs, refreshDelayMs, SessionUnreachable, TokenManager, type Clock, type SignedIn } from "./tokens";

class FakeClock implements Clock {
  time = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now = () => this.time;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, fn, id });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.timers = this.timers.filter((t) => t.id !== handle);
  };
  pending() {
    return this.timers.length;
  }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number) {
    const until = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.time = next.at;
      next.fn();
    }
    this.time = until;
  }
}

const session = (n: number, expiresIn = 900): SignedIn<string> => ({ user: "alice", accessToken: `token-${n}`, expiresIn });

describe("refreshDelayMs", () => {
  it("renews a minute early, or at 80 % of short lifetimes", () => {
    expect(refreshDelayMs(900)).toBe(840_000);
    expect(refreshDelayMs(300)).toBe(240_000);
    expect(refreshDelayMs(100)).toBe(80_000);
    expect(refreshDelayMs(10)).toBe(8_000);
    expect(refreshDelayMs(-5)).toBe(0);
  });
});

describe("backoffMs", () => {
  it("doubles from 1 s to at most 30 s, spread by ±20 %", () => {
    const middle = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6, 20].map((n) => backoffMs(n, middle))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(backoffMs(2, () => 0)).toBe(3200);
    expect(backoffMs(2, () => 1)).toBe(4800);
  });
});

describe("TokenManager", () => {
  it("renews the token before it expires, on a timer", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const tokens = new TokenManager<string>(async () => session(++calls), clock);
    tokens.signedIn(session(0));
    expect(await tokens.validToken()).toBe("token-0");
    clock.advance(839_000);
    expect(calls).toBe(0);
    clock.advance(1_000);
    await vi.waitFor(() => expect(tokens.currentToken()).toBe("token-1"));
    expect(calls).toBe(1);
    // The next renewal is scheduled from the new token's lifetime.
    expect(clock.pending()).toBe(1);
  });

  it("refreshes on demand when the token is (nearly) expired, once for concurrent callers", async () => {
    const clock = new FakeClock();
    let calls = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tokens = new TokenManager<string>(async () => {
      calls++;
      await gate;
      return session(calls);
    }, clock);
    tokens.signedIn(session(0, 900));
    clock.time += 897_000; // 3 s left: too close to use; the timer has not fired in this fake.
    const a = tokens.validToken();
    const b = tokens.validToken();
    const c = tokens.refresh();
    release();
    expect(await a).toBe("token-1");
    expect(await b).toBe("token-1");
    expect((await c)?.accessToken).toBe("token-1");
    expect(calls).toBe(1);
  });

  it("signs out, as expired, when the refresh cookie is no longer accepted", async () => {
    const clock = new FakeClock();
    const tokens = new TokenManager<string>(async () => null, clock);
    const seen: [string | null, string | undefined][] = [];
    tokens.subscribe((u, reason) => seen.push([u, reason]));
    tokens.signedIn(session(0));
    expect(await tokens.refresh()).toBeNull();
    expect(tokens.currentToken()).toBeNull();
    expect(await tokens.validToken()).toBeNull();
    expect(seen).toEqual([
      ["alice", undefined],
      [null, "expired"],
    ]);
    expect(clock.pending()).toBe(0);
  });

  it("tells 'cannot reach the server' apart from 'no session' and keeps the session through it", async () => {
    const clock = new FakeClock();
    let fail = true;
    let calls = 0;
    const tokens = new TokenManager<string>(
      async () => {
        calls++;
        if (fail) throw new Error("Failed to fetch");
        return session(calls);
      },
      clock,
      () => 0.5,
    );
    const seen: (string | null)[] = [];
    tokens.subscribe((u) => seen.push(u));
    tokens.signedIn(session(0));
    await expect(tokens.refresh()).rejects.toBeInstanceOf(SessionUnreachable);
    expect(tokens.currentToken()).toBe("token-0");
    expect(seen).toEqual(["alice"]);
    // Retried after 1 s, then 2 s, while the server stays away…
    clock.advance(1000);
    await vi.waitFor(() => expect(calls).toBe(2));
    clock.advance(1999);
    await Promise.resolve();
    expect(calls).toBe(2);
    fail = false;
    clock.advance(1);
    // …and renewed once it is back; nobody was signed out on the way.
    await vi.waitFor(() => expect(tokens.currentToken()).toBe("token-3"));
    expect(seen).toEqual(["alice", "alice"]);
  });

  it("rejects a page-load refresh that cannot reach the server, without signing out", async () => {
    const tokens = new TokenManager<string>(async () => {
      throw new Error("Failed to fetch");
    }, new FakeClock());
    const seen: (string | null)[] = [];
    tokens.subscribe((u) => seen.push(u));
    const failure = await tokens.refresh().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(SessionUnreachable);
    expect((failure as SessionUnreachable).message).toBe("Failed to fetch");
    expect(seen).toEqual([]);
  });

  it("says why it signed out", () => {
    const tokens = new TokenManager<string>(async () => null, new FakeClock());
    const reasons: (string | undefined)[] = [];
    tokens.subscribe((_u, reason) => reasons.push(reason));
    tokens.signedIn(session(0));
    tokens.signedOut();
    tokens.signedIn(session(1));
    tokens.signedOut("elsewhere");
    expect(reasons).toEqual([undefined, "requested", undefined, "elsewhere"]);
  });

  it("lets a sign-out during a refresh win", async () => {
    const clock = new FakeClock();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tokens = new TokenManager<string>(async () => {
      await gate;
      return session(1);
    }, clock);
    tokens.signedIn(session(0));
    const refreshing = tokens.refresh();
    tokens.signedOut();
    release();
    expect(await refreshing).toBeNull();
    expect(tokens.currentToken()).toBeNull();
  });

  it("returns null without calling the server when never signed in", async () => {
    const refresh = vi.fn(async () => session(1));
    const tokens = new TokenManager<string>(refresh, new FakeClock());
    expect(await tokens.validToken()).toBeNull();
    expect(refresh).not.toHaveBeenCalled();
  });
});
