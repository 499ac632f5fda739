// Account administration: its own chunk, fetched only when an administrator opens it.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { useLocale, useT, type MessageKey } from "../i18n";
import { AccountStatus, Role, type User } from "../gen/parley/user/v1/user_pb";
import { ChatHeader } from "../chat/ChatView";
import { ConfirmModal } from "../ui/Modal";
import { formatTime } from "../ui/time";
import { SignupSettings } from "./SignupSettings";
import { AccountUsage } from "./AccountUsage";
import { describeError } from "../ui/errorText";
import { SharedConnections } from "./SharedConnections";
import { UsagePerUser } from "./UsagePerUser";

const PAGE_SIZE = 20;

const statusLabel: Record<AccountStatus, MessageKey> = {
  [AccountStatus.UNSPECIFIED]: "statusAll",
  [AccountStatus.ACTIVE]: "statusActive",
  [AccountStatus.DISABLED]: "statusDisabled",
  [AccountStatus.PENDING]: "statusPending",
};

const statusClass: Record<AccountStatus, string> = {
  [AccountStatus.UNSPECIFIED]: "bg-gray-100 text-gray-700",
  [AccountStatus.ACTIVE]: "bg-green-100 text-green-800",
  [AccountStatus.DISABLED]: "bg-red-100 text-red-800",
  [AccountStatus.PENDING]: "bg-amber-100 text-amber-800",
};

type Query = { search: string; status: AccountStatus };

export default function AdminView({ onOpenSidebar }: { onOpenSidebar: () => void }) {
  const t = useT();
  const { api, user: me } = useStore();
  const [query, setQuery] = useState<Query>({ search: "", status: AccountStatus.UNSPECIFIED });
  // The tokens of the pages before the current one (the first page's is ""), for "Previous".
  const [tokens, setTokens] = useState<string[]>([""]);
  const [page, setPage] = useState<{ users: User[]; next: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busyId, setBusyId] = useState<bigint | null>(null);
  const [deleting, setDeleting] = useState<User | null>(null);
  const loadSeq = useRef(0);
  // The row whose action just finished: the pressed button is gone (Disable became Re-enable,
  // or the row left), so focus goes to the row's first action, else the list's heading, once
  // the buttons are enabled again, instead of being lost to the page.
  const focusAfter = useRef<bigint | null>(null);
  useEffect(() => {
    const id = focusAfter.current;
    if (id === null || busyId !== null) return;
    focusAfter.current = null;
    const next = document.querySelector<HTMLElement>(`[data-account-id="${id}"] button`);
    (next ?? document.getElementById("accounts-title"))?.focus();
  }, [busyId, page]);

  const load = useCallback(
    async (q: Query, token: string) => {
      const seq = ++loadSeq.current;
      setError(null);
      try {
        const res = await api.admin.listUsers({ search: q.search, status: q.status, pageSize: PAGE_SIZE, pageToken: token });
        // A newer search overtook this one: its answer is dropped.
        if (seq === loadSeq.current) setPage({ users: res.users, next: res.nextPageToken });
      } catch (err) {
        if (seq === loadSeq.current) setError(describeError(err, t));
      }
    },
    [api],
  );

  const currentToken = tokens[tokens.length - 1];
  useEffect(() => {
    void load(query, currentToken);
  }, [load, query, currentToken]);

  const search = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setNotice(null);
    setTokens([""]);
    setQuery({ search: String(form.get("search") ?? "").trim(), status: Number(form.get("status")) as AccountStatus });
  };

  const act = async (target: User, run: () => Promise<unknown>, done: MessageKey) => {
    setBusyId(target.id);
    setError(null);
    setNotice(null);
    try {
      await run();
      setNotice(t(done, { name: target.username }));
      await load(query, currentToken);
      focusAfter.current = target.id;
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusyId(null);
    }
  };

  return (
    <>
      <ChatHeader title={t("admin")} subtitle={<span className="truncate">{t("accounts")}</span>} onOpenSidebar={onOpenSidebar} />
      <div className="min-h-0 flex-1 overflow-y-auto bg-white">
        <div className="mx-auto max-w-5xl px-4 py-6 sm:px-6">
          <SignupSettings />
          <SharedConnections />
          <UsagePerUser />
          <h2 id="accounts-title" tabIndex={-1} className="mb-4 text-lg font-semibold outline-none">
            {t("accounts")}
          </h2>
          <form onSubmit={search} className="mb-4 flex flex-wrap items-end gap-2" role="search" aria-label={t("searchAccounts")}>
            <div className="min-w-48 flex-1">
              <label className="field-label" htmlFor="admin-search">
                {t("searchAccounts")}
              </label>
              <input id="admin-search" name="search" type="search" className="input" placeholder={t("searchAccountsHint")} />
            </div>
            <div>
              <label className="field-label" htmlFor="admin-status">
                {t("status")}
              </label>
              <select id="admin-status" name="status" className="input" defaultValue={String(AccountStatus.UNSPECIFIED)}>
                {[AccountStatus.UNSPECIFIED, AccountStatus.ACTIVE, AccountStatus.DISABLED, AccountStatus.PENDING].map((s) => (
                  <option key={s} value={s}>
                    {t(statusLabel[s])}
                  </option>
                ))}
              </select>
            </div>
            <button type="submit" className="btn-primary">
              {t("search")}
            </button>
          </form>
          {error && (
            <p role="alert" className="alert-error mb-4">
              {error}
            </p>
          )}
          <p role="status" className={notice ? "alert-ok mb-4" : "sr-only"}>
            {notice}
          </p>
          {page === null ? (
            !error && <p aria-busy="true">{t("loading")}</p>
          ) : page.users.length === 0 ? (
            <p className="text-sm text-gray-500">{t("noAccounts")}</p>
          ) : (
            <ul className="divide-y divide-gray-200 rounded-lg border border-gray-200" aria-label={t("accounts")}>
              {page.users.map((u) => (
                <AccountRow
                  key={u.id.toString()}
                  account={u}
                  self={u.id === me.id}
                  busy={busyId === u.id}
                  onDisable={() => void act(u, () => api.admin.disableUser({ id: u.id }), "accountDisabledDone")}
                  onEnable={() => void act(u, () => api.admin.enableUser({ id: u.id }), "accountEnabledDone")}
                  onApprove={() => void act(u, () => api.admin.approveUser({ id: u.id }), "accountApprovedDone")}
                  onDelete={() => setDeleting(u)}
                />
              ))}
            </ul>
          )}
          {page !== null && page.users.length > 0 && <AccountUsage users={page.users} />}
          {page !== null && (tokens.length > 1 || page.next) && (
            <nav className="mt-4 flex justify-between" aria-label={t("pages")}>
              <button
                type="button"
                className="btn-secondary"
                disabled={tokens.length <= 1}
                onClick={() => setTokens((list) => list.slice(0, -1))}
              >
                {t("previousPage")}
              </button>
              <button
                type="button"
                className="btn-secondary"
                disabled={!page.next}
                onClick={() => setTokens((list) => [...list, page.next])}
              >
                {t("nextPage")}
              </button>
            </nav>
          )}
        </div>
      </div>
      <ConfirmModal
        open={deleting !== null}
        title={t("deleteAccountTitle")}
        message={deleting ? t("deleteOtherAccountConfirm", { name: deleting.username }) : ""}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => {
          const target = deleting;
          if (target) void act(target, () => api.admin.deleteUser({ id: target.id }), "accountDeletedDone");
        }}
        onClose={() => setDeleting(null)}
      />
    </>
  );
}

function AccountRow({
  account: u,
  self,
  busy,
  onDisable,
  onEnable,
  onApprove,
  onDelete,
}: {
  account: User;
  self: boolean;
  busy: boolean;
  onDisable: () => void;
  onEnable: () => void;
  onApprove: () => void;
  onDelete: () => void;
}) {
  const t = useT();
  const { locale } = useLocale();
  const label = u.username;
  return (
    <li className="flex flex-wrap items-start justify-between gap-3 p-3" data-testid="account" data-account-id={u.id.toString()}>
      <div className="min-w-0 space-y-1">
        <p className="flex flex-wrap items-center gap-2">
          <span className="font-medium">{u.displayName || u.username}</span>
          <span className="text-sm text-gray-500">@{u.username}</span>
          <span className={`rounded px-1.5 py-0.5 text-xs font-medium ${statusClass[u.status]}`} data-testid="account-status">
            {t(statusLabel[u.status])}
          </span>
          <span className="rounded bg-gray-100 px-1.5 py-0.5 text-xs text-gray-700" data-testid="account-role">
            {t(u.role === Role.ADMIN ? "roleAdmin" : "roleUser")}
          </span>
          {self && <span className="text-xs text-gray-500">({t("you")})</span>}
        </p>
        <p className="text-sm text-gray-600" data-testid="account-sign-in">
          {t("signsInWith")}: {t("username")}
          {u.email && (u.emailVerified ? `, ${t("email")} ${u.email}` : ` · ${t("email")} ${u.email} (${t("emailUnverifiedNoSignIn")})`)}
        </p>
        <p className="text-xs text-gray-500">
          {t("createdAt", { time: formatTime(u.createdAt, locale) ?? "—" })} ·{" "}
          <span data-testid="account-last-sign-in">{t("lastSignIn", { time: formatTime(u.lastLoginAt, locale) ?? t("never") })}</span>
        </p>
      </div>
      {!self && (
        <div className="flex flex-wrap gap-2">
          {u.status === AccountStatus.PENDING && (
            <button type="button" className="btn-primary" disabled={busy} onClick={onApprove} aria-label={`${t("approve")}: ${label}`}>
              {t("approve")}
            </button>
          )}
          {u.status === AccountStatus.ACTIVE && (
            <button type="button" className="btn-secondary" disabled={busy} onClick={onDisable} aria-label={`${t("disable")}: ${label}`}>
              {t("disable")}
            </button>
          )}
          {u.status === AccountStatus.DISABLED && (
            <button type="button" className="btn-secondary" disabled={busy} onClick={onEnable} aria-label={`${t("enable")}: ${label}`}>
              {t("enable")}
            </button>
          )}
          <button type="button" className="btn-danger" disabled={busy} onClick={onDelete} aria-label={`${t("delete")}: ${label}`}>
            {t("delete")}
          </button>
        </div>
      )}
    </li>
  );
}
