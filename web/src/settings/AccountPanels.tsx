import { useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { errorMessage } from "../api/client";
import { useT } from "../i18n";
import { Avatar } from "../ui/Avatar";

function useForm() {
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
      setError(errorMessage(err));
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
  const { api, user, setUser } = useStore();
  const { busy, error, ok, run } = useForm();
  const [avatarUrl, setAvatarUrl] = useState(user.avatarUrl);
  const [displayName, setDisplayName] = useState(user.displayName);

  const save = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    void run(async () => {
      const res = await api.users.updateProfile({
        displayName: displayName.trim(),
        email: String(form.get("email")).trim(),
        avatarUrl: avatarUrl.trim(),
        updateMask: { paths: ["display_name", "email", "avatar_url"] },
      });
      if (res.user) setUser(res.user);
      return t("saved");
    });
  };

  return (
    <form onSubmit={save} className="max-w-lg space-y-4" aria-label={t("profile")}>
      <h2 className="text-lg font-semibold">{t("profile")}</h2>
      <div className="flex items-center gap-3">
        <Avatar name={displayName || user.username} url={avatarUrl} size={56} />
        <div>
          <p className="font-medium">{displayName || user.username}</p>
          <p className="text-sm text-gray-500">@{user.username}</p>
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
        <input id="profile-email" name="email" type="email" className="input" defaultValue={user.email} autoComplete="email" />
      </div>
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
