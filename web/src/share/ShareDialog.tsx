import { useCallback, useEffect, useMemo, useState } from "react";
import { createClient } from "@connectrpc/connect";
import { ShareService, type ShareLink } from "../gen/parley/chat/v1/share_pb";
import type { Api } from "../api/client";
import { useLocale, useT } from "../i18n";
import { Modal } from "../ui/Modal";
import { copyText } from "../ui/clipboard";
import { describeError } from "../ui/errorText";
import { formatTime } from "../ui/time";
import { useToast } from "../ui/toast";
import { useTransferT } from "../transfer/strings";

/** The page a link opens: /s/<token> on this origin. */
export function shareUrl(link: ShareLink): string {
  return `${window.location.origin}/s/${link.shareToken}`;
}

/** The links of one chat (sessionId) or of all the user's chats, each with copy and revoke. */
export function ShareLinkList({
  api,
  sessionId,
  links,
  onRevoked,
}: {
  api: Api;
  sessionId?: bigint;
  links: ShareLink[];
  onRevoked: (id: bigint) => void;
}) {
  const tt = useTransferT();
  const t = useT();
  const { locale } = useLocale();
  const toast = useToast();
  const shares = useMemo(() => createClient(ShareService, api.transport), [api]);
  // Revoking asks first, in the row itself (a dialog inside the share dialog would close both).
  const [confirming, setConfirming] = useState<bigint | null>(null);
  if (links.length === 0) return <p className="text-sm text-gray-500">{tt("noLinks")}</p>;
  const revoke = async (link: ShareLink) => {
    setConfirming(null);
    try {
      await shares.revokeShareLink({ id: link.id });
      onRevoked(link.id);
      toast(tt("linkRevoked"));
    } catch (err) {
      toast(`${tt("couldNotRevoke")}: ${describeError(err, t)}`);
    }
  };
  return (
    <ul className="divide-y divide-gray-200 rounded-lg border border-gray-200" data-testid="share-links">
      {links.map((link) => (
        <li key={link.id.toString()} className="px-3 py-2 text-sm" data-testid="share-link">
          <div className="flex items-center gap-2">
            <div className="min-w-0 flex-1">
              {sessionId === undefined && <div className="truncate font-medium">{link.title || tt("untitled")}</div>}
              <a href={shareUrl(link)} target="_blank" rel="noreferrer" className="block truncate text-blue-700 underline">
                {shareUrl(link)}
              </a>
              <div className="text-xs text-gray-500">
                {tt("linkMessages", { count: link.messageCount })} · {tt("sharedOn", { date: formatTime(link.createdAt, locale) ?? "" })}
              </div>
            </div>
            <button
              type="button"
              className="btn-ghost"
              onClick={async () => toast((await copyText(shareUrl(link))) ? tt("linkCopied") : tt("couldNotCopy"))}
            >
              {tt("copyLink")}
            </button>
            {confirming !== link.id && (
              <button type="button" className="btn-ghost text-red-700" onClick={() => setConfirming(link.id)}>
                {tt("revoke")}
              </button>
            )}
          </div>
          {confirming === link.id && (
            <div role="group" aria-label={tt("revoke")} className="mt-2 flex items-center justify-end gap-2">
              <span className="mr-auto text-xs text-gray-600">{tt("revokeLinkConfirm")}</span>
              <button type="button" className="btn-secondary" onClick={() => setConfirming(null)}>
                {t("cancel")}
              </button>
              <button type="button" className="btn-danger" autoFocus onClick={() => void revoke(link)} data-testid="confirm-revoke">
                {tt("revoke")}
              </button>
            </div>
          )}
        </li>
      ))}
    </ul>
  );
}

/** The chat menu's Share: create a link to a snapshot of the chat, copy it, and see and
 * revoke the chat's earlier links. */
export default function ShareDialog({
  api,
  sessionId,
  open,
  onClose,
}: {
  api: Api;
  sessionId: bigint;
  open: boolean;
  onClose: () => void;
}) {
  const tt = useTransferT();
  const t = useT();
  const toast = useToast();
  const shares = useMemo(() => createClient(ShareService, api.transport), [api]);
  const [links, setLinks] = useState<ShareLink[] | null>(null);
  const [created, setCreated] = useState<ShareLink | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const res = await shares.listShareLinks({ sessionId, pageSize: 100 });
      setLinks(res.links);
      setError(null);
    } catch (err) {
      setError(`${tt("couldNotLoadLinks")}: ${describeError(err, t)}`);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shares, sessionId]);

  useEffect(() => {
    if (open) void load();
    else setCreated(null);
  }, [open, load]);

  const create = async () => {
    setBusy(true);
    try {
      const res = await shares.createShareLink({ sessionId });
      if (res.link) {
        setCreated(res.link);
        setLinks((prev) => [res.link!, ...(prev ?? [])]);
      }
      setError(null);
    } catch (err) {
      setError(`${tt("couldNotShare")}: ${describeError(err, t)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal open={open} title={tt("shareChat")} onClose={onClose}>
      <p className="mb-4 text-sm text-gray-600">{tt("shareIntro")}</p>
      {created && (
        <div className="mb-4 flex gap-2">
          <label className="sr-only" htmlFor="share-link-url">
            {tt("shareLink")}
          </label>
          <input
            id="share-link-url"
            className="input flex-1"
            readOnly
            value={shareUrl(created)}
            onFocus={(e) => e.currentTarget.select()}
            data-testid="share-url"
          />
          <button
            type="button"
            className="btn-primary"
            onClick={async () => toast((await copyText(shareUrl(created))) ? tt("linkCopied") : tt("couldNotCopy"))}
          >
            {tt("copyLink")}
          </button>
        </div>
      )}
      {error && (
        <p role="alert" className="mb-3 text-sm text-red-700">
          {error}
        </p>
      )}
      <div className="mb-4 flex justify-between gap-2">
        <button type="button" className="btn-primary" disabled={busy} onClick={() => void create()}>
          {busy ? tt("creatingLink") : tt("createLink")}
        </button>
        <button type="button" className="btn-secondary" onClick={onClose}>
          {tt("close")}
        </button>
      </div>
      <h3 className="mb-2 text-sm font-medium">{tt("linksOfChat")}</h3>
      {links && (
        <ShareLinkList
          api={api}
          sessionId={sessionId}
          links={links}
          onRevoked={(id) => {
            setLinks((prev) => (prev ?? []).filter((l) => l.id !== id));
            if (created?.id === id) setCreated(null);
          }}
        />
      )}
    </Modal>
  );
}
