import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import type { Api } from "../api/client";
import { errorCode, errorMessage, retryAfterSeconds } from "../api/client";
import { Code } from "@connectrpc/connect";
import { RefreshTokenDelivery, SignupPolicy, VerificationPurpose } from "../gen/parley/user/v1/user_pb";
import { locales, useLocale, useT } from "../i18n";
import { Logo } from "../ui/icons";
import { useCountdown } from "../ui/useCountdown";
import { describeError } from "../ui/errorText";

type Mode = "signin" | "signup" | "forgot";

/** A line above the form: a success (password reset), a warning (the session ended) or
 * plain information (signed out in another tab). */
export interface Notice {
  text: string;
  tone: "success" | "warning" | "info";
}

const noticeClass: Record<Notice["tone"], string> = { success: "alert-ok", warning: "alert-warning", info: "alert-info" };

function Field({ id, label, children }: { id: string; label: string; children: ReactNode }) {
  return (
    <div>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {children}
    </div>
  );
}

export function AuthScreen({ api, notice }: { api: Api; notice?: Notice }) {
  const t = useT();
  const { locale, setLocale } = useLocale();
  const [mode, setMode] = useState<Mode>("signin");
  const [flash, setFlash] = useState<Notice | undefined>(notice);

  return (
    <div className="flex min-h-full flex-col bg-gray-100">
      <header className="flex items-center justify-between bg-black px-4 py-3 text-[#fff]">
        <div className="flex items-center gap-2 text-lg font-semibold">
          <Logo className="h-7 w-7" />
          {t("appName")}
        </div>
        <label className="flex items-center gap-2 text-sm">
          <span className="sr-only">{t("language")}</span>
          <select
            value={locale}
            onChange={(e) => setLocale(e.target.value as typeof locale)}
            className="rounded bg-gray-800 px-2 py-1 text-white"
          >
            {locales.map((l) => (
              <option key={l.id} value={l.id}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
      </header>
      <main className="flex flex-1 items-start justify-center px-4 py-10 sm:items-center">
        <div className="w-full max-w-sm rounded-2xl bg-white p-6 shadow-sm ring-1 ring-gray-200">
          {flash && (
            <p role="status" className={`${noticeClass[flash.tone]} mb-4`} data-testid="auth-notice" data-tone={flash.tone}>
              {flash.text}
            </p>
          )}
          {mode === "signin" && (
            <SignIn
              api={api}
              onMode={(m) => {
                setFlash(undefined);
                setMode(m);
              }}
            />
          )}
          {mode === "signup" && (
            <SignUp
              api={api}
              onMode={(m) => {
                setFlash(undefined);
                setMode(m);
              }}
              onPending={() => {
                setFlash({ text: t("signupPending"), tone: "info" });
                setMode("signin");
              }}
            />
          )}
          {mode === "forgot" && (
            <Forgot
              api={api}
              onDone={() => {
                setFlash({ text: t("passwordReset"), tone: "success" });
                setMode("signin");
              }}
              onBack={() => setMode("signin")}
            />
          )}
        </div>
      </main>
    </div>
  );
}

function useSubmit() {
  const t = useT();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p role="alert" className="alert-error">
      {error}
    </p>
  );
}

/** Why Login refused a correct password, or undefined for any other failure. */
export function loginRefusal(code: Code | undefined, t: (key: "loginDisabled" | "loginPending") => string): string | undefined {
  if (code === Code.PermissionDenied) return t("loginDisabled");
  if (code === Code.FailedPrecondition) return t("loginPending");
  return undefined;
}

function SignIn({ api, onMode }: { api: Api; onMode: (m: Mode) => void }) {
  const t = useT();
  const { busy, error, run } = useSubmit();
  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    void run(async () => {
      try {
        api.signedIn(
          await api.publicUsers.login({
            login: String(form.get("login")),
            password: String(form.get("password")),
            // The refresh token only in the HttpOnly cookie: page scripts never see it.
            refreshTokenDelivery: RefreshTokenDelivery.COOKIE,
          }),
        );
      } catch (err) {
        // The right password on an account that may not sign in: say why, in the page's language.
        throw new Error(loginRefusal(errorCode(err), t) ?? describeError(err, t));
      }
    });
  };
  return (
    <form onSubmit={onSubmit} className="space-y-4" aria-label={t("signIn")}>
      <div>
        <h1 className="text-xl font-semibold">{t("welcomeBack")}</h1>
        <p className="mt-1 text-sm text-gray-500">{t("welcomeSub")}</p>
      </div>
      <Field id="login" label={t("usernameOrEmail")}>
        <input id="login" name="login" className="input" autoComplete="username" required autoFocus />
      </Field>
      <Field id="password" label={t("password")}>
        <input id="password" name="password" type="password" className="input" autoComplete="current-password" required />
      </Field>
      <ErrorLine error={error} />
      <button type="submit" className="btn-primary w-full" disabled={busy}>
        {t("signIn")}
      </button>
      <div className="flex justify-between text-sm">
        <button type="button" className="text-gray-600 underline hover:text-gray-900" onClick={() => onMode("forgot")}>
          {t("forgotPassword")}
        </button>
        <button type="button" className="font-medium text-gray-900 underline" onClick={() => onMode("signup")}>
          {t("signUp")}
        </button>
      </div>
    </form>
  );
}

function SignUp({ api, onMode, onPending }: { api: Api; onMode: (m: Mode) => void; onPending: () => void }) {
  const t = useT();
  const { busy, error, run } = useSubmit();
  // How sign-up works here; until it is known the form asks for nothing extra (the server
  // checks either way).
  const [info, setInfo] = useState<{ policy: SignupPolicy; termsUrl: string } | null>(null);
  useEffect(() => {
    let cancelled = false;
    api.publicUsers.getSignupInfo({}).then(
      (res) => !cancelled && setInfo({ policy: res.policy, termsUrl: safeTermsUrl(res.termsUrl) }),
      () => {},
    );
    return () => {
      cancelled = true;
    };
  }, [api]);
  const needsInvite = info?.policy === SignupPolicy.INVITE;

  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const email = String(form.get("email") ?? "").trim();
    const displayName = String(form.get("displayName") ?? "").trim();
    void run(async () => {
      try {
        api.signedIn(
          await api.publicUsers.register({
            username: String(form.get("username")).trim(),
            password: String(form.get("password")),
            email: email || undefined,
            displayName: displayName || undefined,
            inviteCode: String(form.get("inviteCode") ?? "").trim(),
            acceptedTerms: form.get("acceptTerms") === "on",
            refreshTokenDelivery: RefreshTokenDelivery.COOKIE,
          }),
        );
      } catch (err) {
        // Under the approval policy the account now exists and waits: that is no error.
        if (info?.policy === SignupPolicy.APPROVAL && errorCode(err) === Code.FailedPrecondition && /approval/i.test(errorMessage(err))) {
          onPending();
          return;
        }
        throw err;
      }
    });
  };
  return (
    <form onSubmit={onSubmit} className="space-y-4" aria-label={t("signUp")}>
      <h1 className="text-xl font-semibold">{t("createAccount")}</h1>
      {info?.policy === SignupPolicy.APPROVAL && (
        <p className="alert-info" data-testid="signup-policy">
          {t("signupNeedsApproval")}
        </p>
      )}
      {info?.policy === SignupPolicy.CLOSED && (
        <p className="alert-warning" data-testid="signup-policy">
          {t("signupClosed")}
        </p>
      )}
      {needsInvite && (
        <Field id="inviteCode" label={t("inviteCode")}>
          <input
            id="inviteCode"
            name="inviteCode"
            className="input font-mono"
            autoComplete="off"
            required
            aria-describedby="inviteCode-hint"
          />
          <p id="inviteCode-hint" className="mt-1 text-sm text-gray-500">
            {t("inviteCodeHint")}
          </p>
        </Field>
      )}
      <Field id="username" label={t("username")}>
        <input id="username" name="username" className="input" autoComplete="username" required minLength={3} maxLength={32} autoFocus />
      </Field>
      <Field id="password" label={t("password")}>
        <input
          id="password"
          name="password"
          type="password"
          className="input"
          autoComplete="new-password"
          required
          minLength={8}
          maxLength={128}
        />
      </Field>
      <Field id="email" label={t("emailOptional")}>
        <input id="email" name="email" type="email" className="input" autoComplete="email" />
      </Field>
      <Field id="displayName" label={t("displayNameOptional")}>
        <input id="displayName" name="displayName" className="input" autoComplete="name" maxLength={100} />
      </Field>
      {info?.termsUrl && (
        <div className="flex items-start gap-2 text-sm">
          <input id="acceptTerms" name="acceptTerms" type="checkbox" className="mt-1" required />
          <label htmlFor="acceptTerms">
            {t("acceptTermsBefore")}{" "}
            <a href={info.termsUrl} target="_blank" rel="noopener noreferrer" className="font-medium underline">
              {t("termsLink")}
            </a>
          </label>
        </div>
      )}
      <ErrorLine error={error} />
      <button type="submit" className="btn-primary w-full" disabled={busy}>
        {t("createAccount")}
      </button>
      <p className="text-center text-sm text-gray-600">
        {t("haveAccount")}{" "}
        <button type="button" className="font-medium text-gray-900 underline" onClick={() => onMode("signin")}>
          {t("signIn")}
        </button>
      </p>
    </form>
  );
}

/** The terms link only when it is http(s) (the server checks too; a page never links elsewhere). */
export function safeTermsUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : "";
  } catch {
    return "";
  }
}

function Forgot({ api, onDone, onBack }: { api: Api; onDone: () => void; onBack: () => void }) {
  const t = useT();
  const { busy, error, run, setError } = useSubmit();
  const [login, setLogin] = useState("");
  const [sentMinutes, setSentMinutes] = useState<number | null>(null);
  const [resent, setResent] = useState(false);
  // The server's limit on sending codes: when the next one may go, and the wait it named.
  const [limit, setLimit] = useState<{ until: number; seconds: number } | null>(null);
  const wait = useCountdown(limit?.until ?? null);

  const requestCode = (resend: boolean) =>
    run(async () => {
      try {
        const res = await api.publicUsers.sendVerificationCode({ login: login.trim(), purpose: VerificationPurpose.PASSWORD_RESET });
        setSentMinutes(Math.max(1, Math.ceil(Number(res.expiresIn) / 60)));
        setResent(resend);
        setLimit(null);
      } catch (err) {
        const seconds = errorCode(err) === Code.ResourceExhausted ? retryAfterSeconds(err) : undefined;
        if (seconds === undefined) throw err;
        // Not an error to fix, just a wait: the countdown says how long.
        setLimit({ until: Date.now() + seconds * 1000, seconds });
      }
    });
  const sendCode = (e: FormEvent) => {
    e.preventDefault();
    void requestCode(false);
  };
  const reset = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const password = String(form.get("newPassword"));
    if (password !== String(form.get("confirmPassword"))) {
      setError(t("passwordsDiffer"));
      return;
    }
    void run(async () => {
      await api.publicUsers.resetPassword({ login: login.trim(), code: String(form.get("code")).trim(), newPassword: password });
      onDone();
    });
  };
  // The countdown ticks in view; screen readers hear the wait once, not every second.
  const waiting = wait > 0 && (
    <>
      <p className="alert-warning" data-testid="resend-wait" aria-hidden="true">
        {t("codeWait", { seconds: wait })}
      </p>
      <p role="status" className="sr-only">
        {limit && t("codeWait", { seconds: limit.seconds })}
      </p>
    </>
  );

  return (
    <div className="space-y-4">
      <h1 className="text-xl font-semibold">{t("resetPassword")}</h1>
      {sentMinutes === null ? (
        <form onSubmit={sendCode} className="space-y-4" aria-label={t("resetPassword")}>
          <p className="text-sm text-gray-600">{t("resetIntro")}</p>
          <Field id="reset-login" label={t("usernameOrEmail")}>
            <input
              id="reset-login"
              className="input"
              value={login}
              onChange={(e) => setLogin(e.target.value)}
              required
              autoFocus
              autoComplete="username"
            />
          </Field>
          <ErrorLine error={error} />
          {waiting}
          <button type="submit" className="btn-primary w-full" disabled={busy || wait > 0}>
            {t("sendCode")}
          </button>
        </form>
      ) : (
        <form onSubmit={reset} className="space-y-4" aria-label={t("resetPassword")}>
          <p role="status" className="text-sm text-gray-600">
            {t(resent ? "codeResent" : "codeSent", { minutes: sentMinutes })}
          </p>
          <p className="flex flex-wrap items-center justify-between gap-2 text-sm text-gray-600">
            <span className="min-w-0 truncate">
              {t("codeFor")} <strong className="font-medium text-gray-900">{login.trim()}</strong>
            </span>
            <button
              type="button"
              className="underline hover:text-gray-900"
              onClick={() => {
                setError(null);
                setLimit(null);
                setSentMinutes(null);
              }}
            >
              {t("changeLogin")}
            </button>
          </p>
          <Field id="code" label={t("code")}>
            <input
              id="code"
              name="code"
              className="input tracking-widest"
              inputMode="numeric"
              autoComplete="one-time-code"
              required
              autoFocus
            />
          </Field>
          <Field id="newPassword" label={t("newPassword")}>
            <input
              id="newPassword"
              name="newPassword"
              type="password"
              className="input"
              autoComplete="new-password"
              required
              minLength={8}
              maxLength={128}
            />
          </Field>
          <Field id="confirmPassword" label={t("confirmPassword")}>
            <input
              id="confirmPassword"
              name="confirmPassword"
              type="password"
              className="input"
              autoComplete="new-password"
              required
              minLength={8}
              maxLength={128}
            />
          </Field>
          <ErrorLine error={error} />
          {waiting}
          <button type="submit" className="btn-primary w-full" disabled={busy}>
            {t("resetPassword")}
          </button>
          <button type="button" className="btn-secondary w-full" disabled={busy || wait > 0} onClick={() => void requestCode(true)}>
            {wait > 0 ? t("resendIn", { seconds: wait }) : t("resendCode")}
          </button>
        </form>
      )}
      <button type="button" className="text-sm text-gray-600 underline hover:text-gray-900" onClick={onBack}>
        {t("backToSignIn")}
      </button>
    </div>
  );
}
