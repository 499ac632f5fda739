// The access token lives here, in memory only; the refresh token is an HttpOnly cookie the
// page never sees. The access token is renewed a little before it expires, and on demand after
// the server answered UNAUTHENTICATED. Concurrent callers share one refresh: a refresh token
// is rotated on use, so two refreshes racing with the same cookie would sign the user out.
// "No session" (the server refused the cookie) and "Parley cannot be reached" are different
// answers: only the first signs out; the second keeps everything and tries again later.

export interface SignedIn<U> {
  user: U;
  accessToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Thrown by `refresh()` when the server could not be asked (network down, gateway or
 * user-service unavailable): the session may be perfectly valid. */
export class SessionUnreachable extends Error {
  constructor(readonly reason: unknown) {
    super(reason instanceof Error ? reason.message : String(reason));
    this.name = "SessionUnreachable";
  }
}

/** Why the page is signed out: the user asked, another tab of this browser did, or the
 * refresh cookie stopped working (it expired or was revoked). */
/** "deleted": the account itself was deleted from this page. */
export type SignOutReason = "requested" | "elsewhere" | "expired" | "deleted";

/** The wait before retry number `attempt` (0-based) of something that could not reach the
 * server: 1 s doubling to 30 s, spread by ±20 % so many tabs do not retry in step. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** When to renew a token valid for `expiresIn` seconds: a minute early, or at 80 % of short lifetimes. */
export function refreshDelayMs(expiresIn: number): number {
  const lifetime = Math.max(0, expiresIn) * 1000;
  return Math.max(lifetime - 60_000, lifetime * 0.8);
}

export type SessionListener<U> = (user: U | null, reason?: SignOutReason) => void;

export class TokenManager<U> {
  private accessToken: string | null = null;
  private expiresAt = 0;
  private timer: unknown = null;
  private inFlight: Promise<SignedIn<U> | null> | null = null;
  private listeners = new Set<SessionListener<U>>();
  private generation = 0;
  private failures = 0;

  constructor(
    /** Exchanges the refresh cookie for a new pair; resolves null when there is no valid
     * session, rejects when the server could not be asked. */
    private readonly refreshWithCookie: () => Promise<SignedIn<U> | null>,
    private readonly clock: Clock = realClock,
    private readonly random: () => number = Math.random,
  ) {}

  /** Called after Register, Login or a refresh. */
  signedIn(session: SignedIn<U>): void {
    this.failures = 0;
    this.accessToken = session.accessToken;
    this.expiresAt = this.clock.now() + session.expiresIn * 1000;
    this.schedule(session.expiresIn);
    this.emit(session.user);
  }

  /** Forgets the access token (sign out, or the refresh cookie stopped working). */
  signedOut(reason: SignOutReason = "requested"): void {
    this.generation += 1;
    this.accessToken = null;
    this.expiresAt = 0;
    this.failures = 0;
    this.cancelTimer();
    this.emit(null, reason);
  }

  subscribe(listener: SessionListener<U>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A token valid for a few more seconds, refreshing first if needed; null when signed out.
   * Rejects with SessionUnreachable when a needed refresh could not reach the server. */
  async validToken(): Promise<string | null> {
    if (this.accessToken && this.clock.now() < this.expiresAt - 5_000) return this.accessToken;
    if (!this.accessToken && this.expiresAt === 0 && !this.inFlight) return null;
    const session = await this.refresh();
    return session?.accessToken ?? null;
  }

  /** The token, if one is held, without refreshing. */
  currentToken(): string | null {
    return this.accessToken;
  }

  /** Renews the pair now. One refresh at a time; every caller gets its result: the new
   * session, null when there is none (signed out), or a SessionUnreachable rejection. */
  refresh(): Promise<SignedIn<U> | null> {
    if (this.inFlight) return this.inFlight;
    const generation = this.generation;
    const run = async (): Promise<SignedIn<U> | null> => {
      let session: SignedIn<U> | null;
      try {
        session = await this.refreshWithCookie();
      } catch (err) {
        // Not a sign-out: keep the token (it may still be valid) and try again, backing off.
        if (this.accessToken && generation === this.generation) this.scheduleRetry();
        throw new SessionUnreachable(err);
      }
      // A sign-out while the refresh was running wins.
      if (generation !== this.generation) return null;
      if (session) this.signedIn(session);
      else this.signedOut("expired");
      return session;
    };
    this.inFlight = run().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private schedule(expiresIn: number): void {
    this.setTimer(refreshDelayMs(expiresIn));
  }

  private scheduleRetry(): void {
    this.setTimer(backoffMs(this.failures++, this.random));
  }

  private setTimer(ms: number): void {
    this.cancelTimer();
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      // A failure schedules its own retry.
      this.refresh().catch(() => {});
    }, ms);
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private emit(user: U | null, reason?: SignOutReason): void {
    for (const listener of this.listeners) listener(user, reason);
  }
}
