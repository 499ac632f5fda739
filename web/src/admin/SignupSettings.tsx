// Who may sign up, and the invite codes for SIGNUP_POLICY_INVITE (administration chunk).
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useStore } from "../app/store";
import { useLocale, useT, type MessageKey } from "../i18n";
import { SignupPolicy } from "../gen/parley/user/v1/user_pb";
import type { InviteCode } from "../gen/parley/user/v1/admin_pb";
import { formatTime } from "../ui/time";
import { copyText } from "../ui/clipboard";
import { describeError } from "../ui/errorText";

export const policyLabel: Record<SignupPolicy, MessageKey> = {
  [SignupPolicy.UNSPECIFIED]: "policyOpen",
  [SignupPolicy.OPEN]: "policyOpen",
  [SignupPolicy.APPROVAL]: "policyApproval",
  [SignupPolicy.INVITE]: "policyInvite",
  [SignupPolicy.CLOSED]: "policyClosed",
};
const policies = [SignupPolicy.OPEN, SignupPolicy.APPROVAL, SignupPolicy.INVITE, SignupPolicy.CLOSED];

/** Where an invite stands, for its badge. */
export function inviteState(invite: InviteCode, now: number): "revoked" | "expired" | "usedUp" | "usable" {
  if (invite.revokedAt) return "revoked";
  if (invite.expiresAt && Number(invite.expiresAt.seconds) * 1000 <= now) return "expired";
  if (invite.uses >= invite.maxUses) return "usedUp";
  return "usable";
}
const inviteStateLabel: Record<ReturnType<typeof inviteState>, MessageKey> = {
  revoked: "inviteRevoked",
  expired: "inviteExpired",
  usedUp: "inviteUsedUp",
  usable: "inviteUsable",
};

export function SignupSettings() {
  const t = useT();
  const { api } = useStore();
  const [policy, setPolicy] = useState<{ policy: SignupPolicy; setByAdministrator: boolean } | null>(null);
  const [choice, setChoice] = useState<SignupPolicy>(SignupPolicy.OPEN);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    api.admin.getSignupPolicy({}).then(
      (res) => {
        if (cancelled) return;
        setPolicy({ policy: res.policy, setByAdministrator: res.setByAdministrator });
        setChoice(res.policy);
      },
      (err) => !cancelled && setError(describeError(err, t)),
    );
    return () => {
      cancelled = true;
    };
  }, [api]);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setOk(null);
    try {
      const res = await api.admin.setSignupPolicy({ policy: choice });
      setPolicy({ policy: res.policy, setByAdministrator: true });
      setOk(t("saved"));
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="mb-10 space-y-6" aria-labelledby="signup-title">
      <form onSubmit={(e) => void save(e)} className="space-y-3" aria-labelledby="signup-title">
        <h2 id="signup-title" className="text-lg font-semibold">
          {t("signupPolicy")}
        </h2>
        <fieldset className="space-y-2" disabled={policy === null}>
          <legend className="sr-only">{t("signupPolicy")}</legend>
          {policies.map((p) => (
            <label key={p} className="flex items-start gap-2 text-sm">
              <input type="radio" name="policy" className="mt-1" checked={choice === p} onChange={() => setChoice(p)} />
              <span>
                <span className="font-medium">{t(policyLabel[p])}</span>
                <span className="block text-gray-500">{t(`${policyLabel[p]}Hint` as MessageKey)}</span>
              </span>
            </label>
          ))}
        </fieldset>
        {policy && !policy.setByAdministrator && <p className="text-sm text-gray-500">{t("policyFromFlag")}</p>}
        {error && (
          <p role="alert" className="alert-error">
            {error}
          </p>
        )}
        {ok && (
          <p role="status" className="alert-ok">
            {ok}
          </p>
        )}
        <button type="submit" className="btn-primary" disabled={busy || policy === null || choice === policy.policy}>
          {t("savePolicy")}
        </button>
      </form>
      <InviteCodes />
    </section>
  );
}

function InviteCodes() {
  const t = useT();
  const { locale } = useLocale();
  const { api } = useStore();
  const [invites, setInvites] = useState<InviteCode[] | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      setInvites((await api.admin.listInviteCodes({})).invites);
    } catch (err) {
      setError(describeError(err, t));
    }
  }, [api]);
  useEffect(() => {
    void reload();
  }, [reload]);

  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      await reload();
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };

  const create = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const days = Number(form.get("days"));
    const maxUses = BigInt(Math.trunc(Number(form.get("maxUses"))));
    void run(async () => {
      const res = await api.admin.createInviteCode({
        maxUses,
        expiresAt: timestampFromDate(new Date(Date.now() + days * 24 * 60 * 60 * 1000)),
      });
      setCopied(false);
      setCreated(res.code);
    });
  };

  const now = Date.now();
  return (
    <div className="space-y-3">
      <h2 className="text-lg font-semibold">{t("inviteCodes")}</h2>
      <form onSubmit={create} className="flex flex-wrap items-end gap-2" aria-label={t("createInvite")}>
        <div>
          <label className="field-label" htmlFor="invite-uses">
            {t("inviteMaxUses")}
          </label>
          <input id="invite-uses" name="maxUses" type="number" className="input w-28" min={1} max={1000} defaultValue={1} required />
        </div>
        <div>
          <label className="field-label" htmlFor="invite-days">
            {t("inviteDays")}
          </label>
          <input id="invite-days" name="days" type="number" className="input w-28" min={1} max={365} defaultValue={7} required />
        </div>
        <button type="submit" className="btn-primary" disabled={busy}>
          {t("createInvite")}
        </button>
      </form>
      {created && (
        <div className="alert-ok flex flex-wrap items-center gap-2" role="status">
          <span>{t("inviteCreated")}</span>
          <code className="rounded bg-white px-2 py-0.5 font-mono" data-testid="new-invite-code">
            {created}
          </code>
          <button type="button" className="btn-secondary" onClick={() => void copyText(created).then((done) => setCopied(done))}>
            {copied ? t("copied") : t("copy")}
          </button>
        </div>
      )}
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      {invites !== null &&
        (invites.length === 0 ? (
          <p className="text-sm text-gray-500">{t("noInvites")}</p>
        ) : (
          <ul className="divide-y divide-gray-200 rounded-lg border border-gray-200" aria-label={t("inviteCodes")}>
            {invites.map((invite) => {
              const state = inviteState(invite, now);
              return (
                <li
                  key={invite.id.toString()}
                  className="flex flex-wrap items-center justify-between gap-2 p-3 text-sm"
                  data-testid="invite"
                >
                  <span>
                    <span className="font-medium">#{invite.id.toString()}</span> ·{" "}
                    {t("inviteUses", { uses: invite.uses.toString(), max: invite.maxUses.toString() })} ·{" "}
                    {t("inviteExpires", { time: formatTime(invite.expiresAt, locale) ?? "—" })} ·{" "}
                    <span data-testid="invite-state">{t(inviteStateLabel[state])}</span>
                  </span>
                  {!invite.revokedAt && (
                    <button
                      type="button"
                      className="btn-secondary"
                      disabled={busy}
                      onClick={() => void run(async () => void (await api.admin.revokeInviteCode({ id: invite.id })))}
                      aria-label={`${t("revoke")}: #${invite.id.toString()}`}
                    >
                      {t("revoke")}
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        ))}
    </div>
  );
}
