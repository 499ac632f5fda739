// The members of a room with their roles, the actions the caller's role allows on each, the
// invitations (by account id, or a code to share as a link), and leaving the room.
import { useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { useT, type MessageKey } from "../i18n";
import { Menu, type MenuItem } from "../ui/Menu";
import { ConfirmModal } from "../ui/Modal";
import { CloseIcon } from "../ui/icons";
import { copyText } from "../ui/clipboard";
import { useToast } from "../ui/toast";
import { describeError } from "../ui/errorText";
import { RoomRole, type Room, type RoomMember } from "../gen/parley/chat/v1/room_pb";
import { canModerate } from "./roomEvents";
import { useRoomsStore } from "./RoomsSection";
import { useAccountName } from "./RoomView";

const roleText: Record<RoomRole, MessageKey> = {
  [RoomRole.UNSPECIFIED]: "roleMember",
  [RoomRole.OWNER]: "roleOwner",
  [RoomRole.ADMIN]: "roleAdmin",
  [RoomRole.MEMBER]: "roleMember",
};

/** Mute durations offered, in seconds (0: until unmuted). */
const muteChoices: { seconds: number; label: MessageKey }[] = [
  { seconds: 600, label: "mute10Minutes" },
  { seconds: 3600, label: "mute1Hour" },
  { seconds: 86400, label: "mute1Day" },
  { seconds: 0, label: "muteIndefinitely" },
];

/** Invite code lifetimes offered, in seconds. */
const expiryChoices: { seconds: number; label: MessageKey }[] = [
  { seconds: 3600, label: "expires1Hour" },
  { seconds: 86400, label: "expires1Day" },
  { seconds: 7 * 86400, label: "expires7Days" },
];

/** Whether a member of `actor` role may act on one of `target` role (owners on all, admins on members). */
function outranks(actor: RoomRole, target: RoomRole): boolean {
  if (actor === RoomRole.OWNER) return target !== RoomRole.OWNER;
  return actor === RoomRole.ADMIN && target === RoomRole.MEMBER;
}

export function MembersPanel({ room, members, onClose }: { room: Room; members: RoomMember[]; onClose: () => void }) {
  const t = useT();
  const toast = useToast();
  const { user } = useStore();
  const store = useRoomsStore();
  const name = useAccountName();
  const [leaving, setLeaving] = useState(false);
  const [confirm, setConfirm] = useState<{ message: string; label: string; run: () => Promise<unknown> } | null>(null);
  const moderator = canModerate(room.myRole);
  const isOwner = room.myRole === RoomRole.OWNER;

  /** Runs an action; members change through the stream's events, and are read again after. */
  const act = async (run: () => Promise<unknown>) => {
    try {
      await run();
      await store.loadMembers(room.id);
    } catch (err) {
      toast(describeError(err, t));
    }
  };

  const itemsFor = (m: RoomMember): MenuItem[] => {
    if (m.accountId === user.accountId || !outranks(room.myRole, m.role)) return [];
    const account = { roomId: room.id, accountId: m.accountId };
    const muted = m.mutedUntil !== undefined && Number(m.mutedUntil.seconds) * 1000 > Date.now();
    const items: MenuItem[] = [];
    if (isOwner) {
      items.push(
        m.role === RoomRole.ADMIN
          ? { label: t("makeMember"), onSelect: () => void act(() => store.client.setMemberRole({ ...account, role: RoomRole.MEMBER })) }
          : { label: t("makeAdmin"), onSelect: () => void act(() => store.client.setMemberRole({ ...account, role: RoomRole.ADMIN })) },
        {
          label: t("transferOwnership"),
          onSelect: () =>
            setConfirm({
              message: t("transferOwnershipConfirm", { name: name(m.accountId) }),
              label: t("transferOwnership"),
              run: async () => {
                const res = await store.client.transferOwnership(account);
                if (res.room) await store.fetchRoom(res.room.id);
              },
            }),
        },
      );
    }
    if (muted) items.push({ label: t("unmute"), onSelect: () => void act(() => store.client.unmuteMember(account)) });
    else {
      for (const choice of muteChoices) {
        items.push({
          label: t(choice.label),
          onSelect: () => void act(() => store.client.muteMember({ ...account, durationSeconds: BigInt(choice.seconds) })),
        });
      }
    }
    items.push(
      { label: t("kick"), danger: true, onSelect: () => void act(() => store.client.kickMember(account)) },
      {
        label: t("ban"),
        danger: true,
        onSelect: () =>
          setConfirm({
            message: t("banConfirm", { name: name(m.accountId) }),
            label: t("ban"),
            run: () => store.client.banMember(account),
          }),
      },
    );
    return items;
  };

  const leave = async () => {
    try {
      await store.client.leaveRoom({ roomId: room.id });
      navigate({ name: "new" }, { replace: true });
    } catch (err) {
      toast(`${t("couldNotLeaveRoom")}: ${describeError(err, t)}`);
    }
  };

  return (
    <aside
      className="fixed inset-y-0 right-0 z-30 flex w-80 max-w-full shrink-0 flex-col border-l border-gray-200 bg-gray-50 shadow-xl md:static md:shadow-none"
      aria-label={t("members")}
      data-testid="members-panel"
    >
      <div className="flex h-14 items-center justify-between border-b border-gray-200 px-3">
        <h2 className="text-sm font-semibold">{t("memberCount", { count: members.length })}</h2>
        <button type="button" className="btn-ghost" onClick={onClose} aria-label={t("close")}>
          <CloseIcon />
        </button>
      </div>
      <div className="min-h-0 flex-1 space-y-4 overflow-y-auto p-3">
        <ul className="space-y-1">
          {members.map((m) => {
            const items = itemsFor(m);
            const muted = m.mutedUntil !== undefined && Number(m.mutedUntil.seconds) * 1000 > Date.now();
            return (
              <li
                key={m.accountId}
                className="flex items-center gap-2 rounded-lg px-2 py-1.5 text-sm hover:bg-gray-100"
                data-testid="room-member"
                data-account-id={m.accountId}
              >
                <div className="min-w-0 flex-1">
                  <p className="truncate font-medium" title={m.accountId}>
                    {name(m.accountId)}
                  </p>
                  <p className="text-xs text-gray-500">
                    {t(roleText[m.role])}
                    {muted && ` · ${t("muted")}`}
                  </p>
                </div>
                {items.length > 0 && (
                  <Menu
                    label={`${t("memberActions")}: ${name(m.accountId)}`}
                    align="right"
                    buttonClassName="btn-ghost text-xs"
                    button="⋯"
                    items={items}
                  />
                )}
              </li>
            );
          })}
        </ul>
        {moderator && <InviteForms room={room} />}
        {!isOwner && (
          <button type="button" className="btn-secondary w-full" onClick={() => setLeaving(true)}>
            {t("leaveRoom")}
          </button>
        )}
      </div>
      {leaving && (
        <ConfirmModal
          open
          title={t("leaveRoom")}
          message={t("leaveRoomConfirm", { room: room.name })}
          confirmLabel={t("leaveRoom")}
          cancelLabel={t("cancel")}
          onConfirm={() => void leave()}
          onClose={() => setLeaving(false)}
        />
      )}
      {confirm !== null && (
        <ConfirmModal
          open
          title={confirm?.label ?? ""}
          message={confirm?.message ?? ""}
          confirmLabel={confirm?.label ?? ""}
          cancelLabel={t("cancel")}
          onConfirm={() => {
            const run = confirm?.run;
            if (run) void act(run);
          }}
          onClose={() => setConfirm(null)}
        />
      )}
    </aside>
  );
}

function InviteForms({ room }: { room: Room }) {
  const t = useT();
  const toast = useToast();
  const store = useRoomsStore();
  const [accountId, setAccountId] = useState("");
  const [expiry, setExpiry] = useState(86400);
  const [maxUses, setMaxUses] = useState(0);
  const [code, setCode] = useState<{ code: string; link: string } | null>(null);

  const invite = async (e: FormEvent) => {
    e.preventDefault();
    try {
      // An account id (a UUID) as it is; anything else is a username.
      const who = accountId.trim();
      const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(who);
      await store.client.inviteUser(byId ? { roomId: room.id, accountId: who } : { roomId: room.id, username: who });
      setAccountId("");
      toast(t("invitationSent"));
    } catch (err) {
      toast(`${t("couldNotInvite")}: ${describeError(err, t)}`);
    }
  };
  const createCode = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const res = await store.client.createInviteCode({ roomId: room.id, expiresInSeconds: BigInt(expiry), maxUses });
      setCode({ code: res.code, link: `${window.location.origin}/rooms/join/${encodeURIComponent(res.code)}` });
    } catch (err) {
      toast(`${t("couldNotCreateInviteCode")}: ${describeError(err, t)}`);
    }
  };

  return (
    <div className="space-y-4 border-t border-gray-200 pt-3">
      <form onSubmit={(e) => void invite(e)} className="space-y-2">
        <label className="block text-xs font-medium text-gray-700">
          {t("inviteByAccountId")}
          <input className="input mt-1" value={accountId} onChange={(e) => setAccountId(e.target.value)} required />
        </label>
        <button type="submit" className="btn-secondary w-full" disabled={!accountId.trim()}>
          {t("invite")}
        </button>
      </form>
      <form onSubmit={(e) => void createCode(e)} className="space-y-2">
        <div className="flex gap-2">
          <label className="block flex-1 text-xs font-medium text-gray-700">
            {t("inviteExpiry")}
            <select className="input mt-1" value={expiry} onChange={(e) => setExpiry(Number(e.target.value))}>
              {expiryChoices.map((c) => (
                <option key={c.seconds} value={c.seconds}>
                  {t(c.label)}
                </option>
              ))}
            </select>
          </label>
          <label className="block w-24 text-xs font-medium text-gray-700">
            {t("inviteMaxUses")}
            <input
              className="input mt-1"
              type="number"
              min={0}
              value={maxUses}
              onChange={(e) => setMaxUses(Math.max(0, Number(e.target.value) || 0))}
            />
          </label>
        </div>
        <p className="text-xs text-gray-500">{t("inviteMaxUsesHint")}</p>
        <button type="submit" className="btn-secondary w-full">
          {t("createInviteCode")}
        </button>
      </form>
      {code && (
        <div className="space-y-1 rounded-lg border border-gray-200 bg-white p-2 text-xs" data-testid="invite-code">
          <p>
            {t("inviteCode")}: <code data-testid="invite-code-value">{code.code}</code>
          </p>
          <p className="break-all text-gray-600">{code.link}</p>
          <div className="flex gap-3">
            <button type="button" className="underline" onClick={() => void copyText(code.code).then((ok) => ok && toast(t("copied")))}>
              {t("copyCode")}
            </button>
            <button type="button" className="underline" onClick={() => void copyText(code.link).then((ok) => ok && toast(t("copied")))}>
              {t("copyLink")}
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
