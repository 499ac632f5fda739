import { useEffect, useState } from "react";
import { api, takeSignOutRequested } from "./session";
import type { User } from "../gen/parley/user/v1/user_pb";
import { I18nProvider, useT } from "../i18n";
import { AuthScreen } from "../auth/AuthScreen";
import { StoreProvider } from "./store";
import { Shell } from "../layout/Shell";
import { Logo } from "../ui/icons";

type AuthState = { status: "loading" } | { status: "signedOut"; notice?: string } | { status: "signedIn"; user: User };

function Gate() {
  const t = useT();
  const [auth, setAuth] = useState<AuthState>({ status: "loading" });

  useEffect(() => {
    let wasSignedIn = false;
    const unsubscribe = api.tokens.subscribe((user) => {
      if (user) {
        wasSignedIn = true;
        // Keep the same user object identity when only the token changed.
        setAuth((prev) => (prev.status === "signedIn" && prev.user.id === user.id ? prev : { status: "signedIn", user }));
      } else {
        // Signed out without asking (the refresh cookie expired or was revoked): say so.
        const expired = !takeSignOutRequested() && wasSignedIn;
        wasSignedIn = false;
        setAuth({ status: "signedOut", notice: expired ? t("sessionExpired") : undefined });
      }
    });
    // The HttpOnly refresh cookie, if any, signs the page back in after a reload.
    api.tokens.refresh().then(
      (session) => {
        if (!session) setAuth({ status: "signedOut" });
      },
      () => setAuth({ status: "signedOut", notice: t("networkError") }),
    );
    return unsubscribe;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  if (auth.status === "loading") {
    return (
      <div className="flex h-full items-center justify-center bg-gray-100" aria-busy="true">
        <div className="flex items-center gap-3 text-gray-500">
          <Logo className="h-8 w-8 animate-pulse rounded-lg bg-black p-0.5" />
          {t("loading")}
        </div>
      </div>
    );
  }
  if (auth.status === "signedOut") return <AuthScreen api={api} notice={auth.notice} />;
  return (
    <StoreProvider key={auth.user.id.toString()} api={api} user={auth.user}>
      <Shell />
    </StoreProvider>
  );
}

export function App() {
  return (
    <I18nProvider>
      <Gate />
    </I18nProvider>
  );
}
