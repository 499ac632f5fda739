import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { api as pageApi } from "./session";
import type { Api } from "../api/client";
import type { User } from "../gen/parley/user/v1/user_pb";
import { backoffMs, type SignOutReason } from "../auth/tokens";
import { I18nProvider, useT } from "../i18n";
import { AuthScreen, type Notice } from "../auth/AuthScreen";
import { Logo } from "../ui/icons";
import { ToastProvider } from "../ui/toast";
import { useCountdown } from "../ui/useCountdown";
import { clearDrafts } from "../chat/drafts";
import { forgetMarkdownParts } from "../markdown/partsHint";
import { loadSignedIn, rememberSignedIn, takeRestore } from "./preload";

const SignedIn = lazy(loadSignedIn);

// A shared chat (/s/<token>) is read signed out, in a chunk of its own.
const SharedChatPage = lazy(() => import("../share/SharedChatPage"));
const sharedChatPath = /^\/s\/([A-Za-z0-9_-]+)\/?$/;

/** The loading state; the app chunk's fallback is the same, so nothing moves in between. */
function Loading() {
  const t = useT();
  return (
    <div className="flex h-full items-center justify-center bg-gray-100" aria-busy="true">
      <div className="flex items-center gap-3 text-gray-500">
        <Logo className="h-8 w-8 animate-pulse rounded-lg bg-black p-0.5" />
        {t("loading")}
      </div>
    </div>
  );
}

type AuthState =
  | { status: "loading" }
  /** The session could not be checked (network, gateway or user-service down): it is kept. */
  | { status: "unreachable"; retryAt: number }
  | { status: "signedOut"; notice?: "expired" | "elsewhere" | "deleted" }
  | { status: "signedIn"; user: User };

function signedOutNotice(reason: SignOutReason | undefined, wasSignedIn: boolean): "expired" | "elsewhere" | "deleted" | undefined {
  if (reason === "elsewhere" || reason === "deleted") return reason;
  // Signed out without asking (the refresh cookie expired or was revoked): say so.
  if (reason === "expired" && wasSignedIn) return "expired";
  return undefined;
}

function Gate({ api }: { api: Api }) {
  const t = useT();
  const [auth, setAuth] = useState<AuthState>({ status: "loading" });
  const retryNow = useRef<() => void>(() => {});

  useEffect(() => {
    let wasSignedIn = false;
    let cancelled = false;
    let timer: number | undefined;
    const unsubscribe = api.tokens.subscribe((user, reason) => {
      rememberSignedIn(user !== null);
      if (user) {
        wasSignedIn = true;
        // Keep the same user object identity when only the token changed.
        setAuth((prev) => (prev.status === "signedIn" && prev.user.id === user.id ? prev : { status: "signedIn", user }));
      } else {
        // Signing out (here or in another tab) leaves no unsent text behind on this device,
        // nor which parts (math, languages) its chats needed.
        if (reason === "requested" || reason === "elsewhere" || reason === "deleted") {
          clearDrafts();
          forgetMarkdownParts();
        }
        const notice = signedOutNotice(reason, wasSignedIn);
        wasSignedIn = false;
        setAuth({ status: "signedOut", notice });
      }
    });
    // The HttpOnly refresh cookie, if any, signs the page back in after a reload. When Parley
    // cannot be reached the cookie may still be good: wait, try again, never sign out for it.
    // A device that was signed in started this check before the first render (preload.ts).
    const restore = async (attempt: number) => {
      window.clearTimeout(timer);
      try {
        const session = await ((attempt === 0 && takeRestore(api)) || api.tokens.refresh());
        timer = undefined;
        retryNow.current = () => {};
        if (cancelled) return;
        if (session && api.tokens.currentToken() !== null) {
          // Also said by the subscription, unless the answer came before it was made (and
          // still holds: no sign-out since).
          rememberSignedIn(true);
          wasSignedIn = true;
          const user = session.user;
          setAuth((prev) => (prev.status === "signedIn" && prev.user.id === user.id ? prev : { status: "signedIn", user }));
        } else {
          setAuth((prev) => (prev.status === "signedIn" ? prev : { status: "signedOut" }));
        }
      } catch {
        if (cancelled) return;
        const delay = backoffMs(attempt);
        setAuth({ status: "unreachable", retryAt: Date.now() + delay });
        retryNow.current = () => void restore(attempt + 1);
        timer = window.setTimeout(retryNow.current, delay);
      }
    };
    void restore(0);
    const onOnline = () => {
      if (timer !== undefined) retryNow.current();
    };
    window.addEventListener("online", onOnline);
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
      window.removeEventListener("online", onOnline);
      unsubscribe();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api]);

  if (auth.status === "loading") return <Loading />;
  if (auth.status === "unreachable") return <Unreachable retryAt={auth.retryAt} onRetry={() => retryNow.current()} />;
  if (auth.status === "signedOut") {
    const notice: Notice | undefined =
      auth.notice === "expired"
        ? { text: t("sessionExpired"), tone: "warning" }
        : auth.notice === "elsewhere"
          ? { text: t("signedOutElsewhere"), tone: "info" }
          : auth.notice === "deleted"
            ? { text: t("accountDeletedNotice"), tone: "info" }
            : undefined;
    return <AuthScreen api={api} notice={notice} />;
  }
  return (
    <Suspense fallback={<Loading />}>
      <SignedIn key={auth.user.id.toString()} api={api} user={auth.user} />
    </Suspense>
  );
}

function Unreachable({ retryAt, onRetry }: { retryAt: number; onRetry: () => void }) {
  const t = useT();
  const seconds = useCountdown(retryAt);
  return (
    <div className="flex h-full items-center justify-center bg-gray-100 p-4">
      <div className="w-full max-w-sm rounded-2xl bg-white p-6 text-center shadow-sm ring-1 ring-gray-200" data-testid="unreachable">
        <Logo className="mx-auto mb-3 h-10 w-10 rounded-lg bg-black p-0.5" />
        <h1 className="text-lg font-semibold">{t("unreachableTitle")}</h1>
        <p role="status" className="mt-1 text-sm text-gray-600">
          {t("unreachableBody")}
        </p>
        <p className="mt-3 text-sm text-gray-500" aria-hidden="true">
          {seconds > 0 ? t("retryingIn", { seconds }) : t("retrying")}
        </p>
        <button type="button" className="btn-primary mt-4" onClick={onRetry}>
          {t("retryNow")}
        </button>
      </div>
    </div>
  );
}

export function App({ api = pageApi }: { api?: Api }) {
  const shared = sharedChatPath.exec(window.location.pathname)?.[1];
  return (
    <I18nProvider>
      <ToastProvider>
        {shared ? (
          <Suspense fallback={<Loading />}>
            <SharedChatPage token={shared} />
          </Suspense>
        ) : (
          <Gate api={api} />
        )}
      </ToastProvider>
    </I18nProvider>
  );
}
