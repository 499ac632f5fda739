import { useState, type FormEvent } from "react";
import { Code } from "@connectrpc/connect";
import { useStore } from "../app/store";
import { errorCode, retryAfterSeconds } from "../api/client";
import { useLocale, useT } from "../i18n";
import { VerificationPurpose } from "../gen/parley/user/v1/user_pb";
import { Avatar } from "../ui/Avatar";
import { Modal } from "../ui/Modal";
import { useCountdown } from "../ui/useCountdown";
import { formatTime } from "../ui/time";
import { describeError } from "../ui/errorText";

function useForm() {
  const t = useT();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);
  const run = async (fn: () => Promise<string>) => {
    setBusy(true);
    setError(null);
    setOk(null);
    try {
      setOk(await fn());
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, ok, run, setError };
}

function Result({ error, ok }: { error: string | null; ok: string | null }) {
  if (error)
    return (
      <p role="alert" className="alert-error">
        {error}
      </p>
    );
  if (ok)
    return (
      <p role="status" className="alert-ok">
        {ok}
      </p>
    );
  return null;
}

export function ProfilePanel() {
  const t = useT();
  const { locale } = useLocale();
  const { api, user, setUser } = useStore();
  const { busy, error, ok, run } = useForm();
  const [avatarUrl, setAvatarUrl] = useState(user.avatarUrl);
  const [displayName, setDisplayName] = useState(user.displayName);
  const [email, setEmail] = useState(user.email);
  // The address is where reset codes go: moving it asks for the password (the server does too).
  const emailChanged = email.trim() !== user.email;

  const save = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const formElement = e.currentTarget;
    const form = new FormData(formElement);
    void run(async () => {
      const paths = ["display_name", "avatar_url"];
      if (emailChanged) paths.push("email");
      const res = await api.users.updateProfile({
        displayName: displayName.trim(),
        email: email.trim(),
        avatarUrl: avatarUrl.trim(),
        currentPassword: emailChanged ? String(form.get("currentPassword")) : undefined,
        updateMask: { paths },
      });
      if (res.user) {
        setUser(res.user);
        setEmail(res.user.email);
      }
      return t("saved");
    });
  };

  const since = formatTime(user.createdAt, locale);
  const lastSignIn = formatTime(user.lastLoginAt, locale) ?? t("never");
  return (
    <div className="max-w-lg space-y-10">
      <form onSubmit={save} className="space-y-4" aria-label={t("profile")}>
        <h2 className="text-lg font-semibold">{t("profile")}</h2>
        <div className="flex items-center gap-3">
          <Avatar name={displayName || user.username} url={avatarUrl} size={56} />
          <div>
            <p className="font-medium">{displayName || user.username}</p>
            <p className="text-sm text-gray-500">@{user.username}</p>
            <p className="text-xs text-gray-500" data-testid="profile-times">
              {since && `${t("memberSince", { time: since })} · `}
              {t("lastSignIn", { time: lastSignIn })}
            </p>
          </div>
        </div>
        <div>
          <label className="field-label" htmlFor="profile-name">
            {t("displayName")}
          </label>
          <input id="profile-name" className="input" value={displayName} onChange={(e) => setDisplayName(e.target.value)} maxLength={100} />
        </div>
        <div>
          <label className="field-label" htmlFor="profile-email">
            {t("email")}
          </label>
          <input
            id="profile-email"
            type="email"
            className="input"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            autoComplete="email"
            aria-describedby={user.email && !emailChanged ? "profile-email-state" : undefined}
          />
          {user.email && !emailChanged && (
            <p
              id="profile-email-state"
              className={`mt-1 text-sm ${user.emailVerified ? "text-green-700" : "text-amber-700"}`}
              data-testid="email-state"
            >
              {user.emailVerified ? t("emailVerified") : t("emailNotVerified")}
            </p>
          )}
        </div>
        {emailChanged && (
          <div>
            <label className="field-label" htmlFor="profile-current-password">
              {t("currentPassword")}
            </label>
            <input
              id="profile-current-password"
              name="currentPassword"
              type="password"
              className="input"
              autoComplete="current-password"
              required
              aria-describedby="profile-current-password-hint"
            />
            <p id="profile-current-password-hint" className="mt-1 text-sm text-gray-500">
              {t("emailNeedsPassword")}
            </p>
          </div>
        )}
        <div>
          <label className="field-label" htmlFor="profile-avatar">
            {t("avatarUrl")}
          </label>
          <input
            id="profile-avatar"
            type="url"
            className="input"
            value={avatarUrl}
            onChange={(e) => setAvatarUrl(e.target.value)}
            placeholder="https://…"
          />
        </div>
        <Result error={error} ok={ok} />
        <button type="submit" className="btn-primary" disabled={busy}>
          {t("save")}
        </button>
      </form>
      {user.email && !user.emailVerified && <VerifyEmail key={user.email} />}
      <DeleteAccount />
    </div>
  );
}

/** Sends an EMAIL_VERIFY code to the profile's unverified address and checks it. */
function VerifyEmail() {
  const t = useT();
  const { api, user, setUser } = useStore();
  const { busy, error, ok, run, setError } = useForm();
  const [sent, setSent] = useState<number | null>(null);
  const [limit, setLimit] = useState<number | null>(null);
  const wait = useCountdown(limit);

  const send = () =>
    void run(async () => {
      try {
        const res = await api.publicUsers.sendVerificationCode({ login: user.username, purpose: VerificationPurpose.EMAIL_VERIFY });
        setSent(Math.max(1, Math.ceil(Number(res.expiresIn) / 60)));
        setLimit(null);
        return t("verifyCodeSent", { email: user.email, minutes: Math.max(1, Math.ceil(Number(res.expiresIn) / 60)) });
      } catch (err) {
        const seconds = errorCode(err) === Code.ResourceExhausted ? retryAfterSeconds(err) : undefined;
        if (seconds === undefined) throw err;
        setLimit(Date.now() + seconds * 1000);
        return t("codeWait", { seconds });
      }
    });
  const verify = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const code = String(new FormData(e.currentTarget).get("code")).trim();
    void run(async () => {
      const res = await api.users.verifyCode({ login: user.username, code, purpose: VerificationPurpose.EMAIL_VERIFY });
      if (!res.valid) throw new Error(t("codeInvalid"));
      const me = await api.users.getMe({});
      if (me.user) setUser(me.user);
      return t("emailVerifiedDone");
    });
  };

  return (
    <section className="space-y-3" aria-labelledby="verify-email-title">
      <h2 id="verify-email-title" className="text-lg font-semibold">
        {t("verifyEmail")}
      </h2>
      <button type="button" className="btn-secondary" disabled={busy || wait > 0} onClick={send}>
        {sent === null ? t("sendVerifyCode") : wait > 0 ? t("resendIn", { seconds: wait }) : t("resendCode")}
      </button>
      {sent !== null && (
        <form onSubmit={verify} className="flex flex-wrap items-end gap-2" aria-label={t("verifyEmail")}>
          <div>
            <label className="field-label" htmlFor="verify-code">
              {t("code")}
            </label>
            <input
              id="verify-code"
              name="code"
              className="input tracking-widest"
              inputMode="numeric"
              autoComplete="one-time-code"
              required
              onChange={() => setError(null)}
            />
          </div>
          <button type="submit" className="btn-primary" disabled={busy}>
            {t("verifyEmail")}
          </button>
        </form>
      )}
      <Result error={error} ok={ok} />
    </section>
  );
}

/** Deletes the signed-in account after a clear warning and the password; then signs out. */
function DeleteAccount() {
  const t = useT();
  const { api, user } = useStore();
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const password = String(new FormData(e.currentTarget).get("password"));
    setBusy(true);
    setError(null);
    try {
      await api.users.deleteAccount({ password });
      api.accountDeleted();
    } catch (err) {
      setError(describeError(err, t));
      setBusy(false);
    }
  };

  return (
    <section className="space-y-3 rounded-lg border border-red-200 p-4" aria-labelledby="delete-account-title">
      <h2 id="delete-account-title" className="text-lg font-semibold text-red-800">
        {t("deleteMyAccount")}
      </h2>
      <p className="text-sm text-gray-600">{t("deleteMyAccountIntro")}</p>
      <button type="button" className="btn-danger" onClick={() => setOpen(true)}>
        {t("deleteMyAccount")}…
      </button>
      <Modal
        open={open}
        title={t("deleteMyAccount")}
        onClose={() => {
          setOpen(false);
          setError(null);
        }}
      >
        <form onSubmit={(e) => void submit(e)} className="space-y-4">
          <p className="alert-warning" id="delete-account-warning">
            {t("deleteMyAccountWarning", { name: user.username })}
          </p>
          <div>
            <label className="field-label" htmlFor="delete-account-password">
              {t("password")}
            </label>
            <input
              id="delete-account-password"
              name="password"
              type="password"
              className="input"
              autoComplete="current-password"
              required
              autoFocus
              aria-describedby="delete-account-warning"
            />
          </div>
          {error && (
            <p role="alert" className="alert-error">
              {error}
            </p>
          )}
          <div className="flex justify-end gap-2">
            <button type="button" className="btn-secondary" onClick={() => setOpen(false)}>
              {t("cancel")}
            </button>
            <button type="submit" className="btn-danger" disabled={busy}>
              {t("deleteForever")}
            </button>
          </div>
        </form>
      </Modal>
    </section>
  );
}

export function PasswordPanel() {
  const t = useT();
  const { api } = useStore();
  const { busy, error, ok, run, setError } = useForm();

  const save = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const formElement = e.currentTarget;
    const form = new FormData(formElement);
    const next = String(form.get("newPassword"));
    if (next !== String(form.get("confirmPassword"))) {
      setError(t("passwordsDiffer"));
      return;
    }
    void run(async () => {
      await api.users.changePassword({ oldPassword: String(form.get("oldPassword")), newPassword: next });
      formElement.reset();
      return t("passwordChanged");
    });
  };

  return (
    <form onSubmit={save} className="max-w-lg space-y-4" aria-label={t("changePassword")}>
      <h2 className="text-lg font-semibold">{t("changePassword")}</h2>
      <div>
        <label className="field-label" htmlFor="old-password">
          {t("currentPassword")}
        </label>
        <input id="old-password" name="oldPassword" type="password" className="input" autoComplete="current-password" required />
      </div>
      <div>
        <label className="field-label" htmlFor="new-password">
          {t("newPassword")}
        </label>
        <input
          id="new-password"
          name="newPassword"
          type="password"
          className="input"
          autoComplete="new-password"
          required
          minLength={8}
          maxLength={128}
        />
      </div>
      <div>
        <label className="field-label" htmlFor="confirm-password">
          {t("confirmPassword")}
        </label>
        <input
          id="confirm-password"
          name="confirmPassword"
          type="password"
          className="input"
          autoComplete="new-password"
          required
          minLength={8}
          maxLength={128}
        />
      </div>
      <Result error={error} ok={ok} />
      <button type="submit" className="btn-primary" disabled={busy}>
        {t("changePassword")}
      </button>
    </form>
  );
}
