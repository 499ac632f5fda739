import { lazy, Suspense, useState } from "react";
import { useStore } from "../app/store";
import { navigate, routePath, useRoute } from "../app/router";
import { locales, useLocale, useT, type Locale, type MessageKey } from "../i18n";
import { groupSessions, type GroupKey } from "./groups";
import { Avatar } from "../ui/Avatar";
import { Menu } from "../ui/Menu";
import { ConfirmModal, PromptModal } from "../ui/Modal";
import { ArchiveIcon, CloseIcon, DotsIcon, EditIcon, Logo, PinIcon, PlusIcon, SidebarIcon, TrashIcon } from "../ui/icons";
import { nextTheme, setTheme, useTheme, type ThemeChoice } from "../ui/theme";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import { Role } from "../gen/parley/user/v1/user_pb";
import { useToast } from "../ui/toast";
import { chatDraftKey, writeDraft } from "../chat/drafts";
import { describeError } from "../ui/errorText";
import { exportChat } from "../transfer/exportChat";
import { FolderIcon, FolderSections, MoveToFolderDialog } from "../library/FolderSections";
import { splitByFolder } from "../library/folders";
import { useLibraryT } from "../library/strings";

// Share links' dialog and chat export: chunks of their own, fetched when first used.
const ShareDialog = lazy(() => import("../share/ShareDialog"));

// The rooms section is the rooms chunk's, fetched once signed in.
const RoomsSection = lazy(() => import("../rooms").then((m) => ({ default: m.RoomsSection })));
const NotificationBell = lazy(() => import("../rooms").then((m) => ({ default: m.NotificationBell })));

const groupLabels: Record<GroupKey, MessageKey> = {
  pinned: "pinned",
  today: "today",
  yesterday: "yesterday",
  previous7: "previous7Days",
  older: "older",
};

const themeLabels: Record<ThemeChoice, MessageKey> = { system: "themeSystem", light: "themeLight", dark: "themeDark" };

export function Sidebar({
  onClose,
  onCollapse,
  onShowShortcuts,
}: {
  /** In the phone drawer: closes it. */
  onClose?: () => void;
  /** On the desktop: folds the sidebar to a rail. */
  onCollapse?: () => void;
  onShowShortcuts: () => void;
}) {
  const t = useT();
  const { api, user, sessions, sessionsLoad, reloadSessions, folders } = useStore();
  const lt = useLibraryT();
  const byFolder = splitByFolder(sessions, folders);
  const chatItem = (s: Session) => (
    <ChatListItem key={s.id.toString()} session={s} active={route.name === "chat" && route.id === s.id.toString()} />
  );
  const toast = useToast();
  const { locale, setLocale } = useLocale();
  const route = useRoute();
  const name = user.displayName || user.username;
  const otherLocale = locales.find((l) => l.id !== locale) ?? locales[0];
  const theme = useTheme();

  return (
    <div className="flex h-full w-full flex-col bg-gray-100 text-gray-900">
      {/* The navigation bar: black, white text, logo and the user's menu. */}
      <nav className="flex items-center justify-between gap-2 bg-black px-3 py-2.5 text-[#fff]" aria-label="Parley">
        <a
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate({ name: "new" });
          }}
          className="flex shrink-0 items-center gap-2 rounded text-lg font-semibold"
        >
          <Logo className="h-7 w-7" />
          <span>{t("appName")}</span>
        </a>
        <div className="flex min-w-0 items-center gap-1">
          <Suspense fallback={null}>
            <NotificationBell />
          </Suspense>
          <Menu
            label={t("userMenu")}
            align="right"
            buttonClassName="flex max-w-28 min-w-0 items-center gap-2 rounded-lg px-2 py-1 hover:bg-[#ffffff1a]"
            button={
              <>
                <Avatar name={name} url={user.avatarUrl} size={26} />
                <span className="truncate text-sm" data-testid="user-name">
                  {name}
                </span>
              </>
            }
            items={[
              { label: t("profile"), onSelect: () => navigate({ name: "settings", tab: "profile" }) },
              { label: t("apiConfigs"), onSelect: () => navigate({ name: "settings", tab: "api-configs" }) },
              { label: t("personas"), onSelect: () => navigate({ name: "settings", tab: "personas" }) },
              { label: t("changePassword"), onSelect: () => navigate({ name: "settings", tab: "password" }) },
              ...(user.role === Role.ADMIN ? [{ label: t("admin"), onSelect: () => navigate({ name: "admin" }) }] : []),
              { label: `${t("language")}: ${otherLocale.label}`, onSelect: () => setLocale(otherLocale.id) },
              // Shows the current choice; choosing it moves on to the next.
              { label: `${t("theme")}: ${t(themeLabels[theme])}`, onSelect: () => setTheme(nextTheme(theme)) },
              { label: t("keyboardShortcuts"), onSelect: onShowShortcuts },
              {
                label: t("signOut"),
                // A failed sign-out leaves the cookie valid: stay signed in, and say so.
                onSelect: () => void api.signOut().catch((err) => toast(`${t("couldNotSignOut")}: ${describeError(err, t)}`)),
              },
            ]}
          />
          {onCollapse && (
            <button
              type="button"
              className="rounded p-1.5 hover:bg-[#ffffff1a]"
              onClick={onCollapse}
              aria-label={t("collapseSidebar")}
              title={t("collapseSidebar")}
            >
              <SidebarIcon />
            </button>
          )}
          {onClose && (
            <button
              type="button"
              className="rounded p-1.5 hover:bg-[#ffffff1a]"
              onClick={onClose}
              aria-label={t("closeSidebar")}
              data-drawer-initial-focus
            >
              <CloseIcon />
            </button>
          )}
        </div>
      </nav>
      <div className="p-3">
        <a
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate({ name: "new" });
          }}
          className="flex w-full items-center gap-2 rounded-lg border border-gray-300 bg-white px-3 py-2 text-sm font-medium shadow-xs hover:bg-gray-50"
        >
          <PlusIcon />
          {t("newChat")}
        </a>
      </div>
      <div className="min-h-0 flex-1 overflow-y-auto px-2 pb-2">
        <Suspense fallback={null}>
          <RoomsSection />
        </Suspense>
        <h2 className="sr-only">{t("chats")}</h2>
        {sessionsLoad.status === "failed" && (
          <div role="alert" className="alert-error mx-1 mb-3" data-testid="chat-list-error">
            <p className="break-words">
              {t("chatsLoadFailed")}: {sessionsLoad.error}
            </p>
            <button type="button" className="mt-1 font-medium underline" onClick={() => void reloadSessions()}>
              {t("retry")}
            </button>
          </div>
        )}
        {sessionsLoad.status === "loading" && sessions.length === 0 ? (
          <div aria-busy="true" data-testid="chat-list-loading">
            <span className="sr-only">{t("loading")}</span>
            <ul className="space-y-2 px-2 py-1" aria-hidden="true">
              {[70, 55, 80, 45].map((width) => (
                <li key={width} className="h-5 animate-pulse rounded bg-gray-200" style={{ width: `${width}%` }} />
              ))}
            </ul>
          </div>
        ) : (
          <div className="space-y-4" data-testid="chat-list">
            {(folders.length > 0 || sessions.length > 0) && <FolderSections groups={byFolder.folders} renderChat={chatItem} />}
            {sessions.length === 0 && sessionsLoad.status === "ready" && <p className="px-2 py-2 text-sm text-gray-500">{t("noChats")}</p>}
            {groupSessions(byFolder.rest, new Date()).map((group) => (
              <section key={group.key} aria-labelledby={`chat-group-${group.key}`}>
                <h3 id={`chat-group-${group.key}`} className="px-2 pb-1 text-xs font-semibold text-gray-500">
                  {t(groupLabels[group.key])}
                </h3>
                <ul className="space-y-0.5">{group.sessions.map(chatItem)}</ul>
              </section>
            ))}
          </div>
        )}
      </div>
      <div className="border-t border-gray-200 px-3 py-2">
        <a
          href={routePath({ name: "archived" })}
          onClick={(e) => {
            e.preventDefault();
            navigate({ name: "archived" });
            onClose?.();
          }}
          aria-current={route.name === "archived" ? "page" : undefined}
          className="flex items-center gap-1.5 text-xs text-gray-600 underline-offset-2 hover:underline"
        >
          <ArchiveIcon width={14} height={14} />
          {lt("archivedChats")}
        </a>
      </div>
    </div>
  );
}

/** The chat menu's share and export items (the dialogs' own words are in their chunk). */
const shareLabels: Record<Locale, { share: string; markdown: string; json: string; couldNotExport: string }> = {
  en: { share: "Share", markdown: "Export as Markdown", json: "Export as JSON", couldNotExport: "Could not export" },
  "zh-CN": { share: "分享", markdown: "导出为 Markdown", json: "导出为 JSON", couldNotExport: "无法导出" },
};

function ShareIcon() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
      <path d="M4 12v7a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-7M16 6l-4-4-4 4M12 2v13" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

function DownloadIcon() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
      <path d="M4 17v2a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-2M7 11l5 5 5-5M12 4v12" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

export function useSessionActions(session: Session, onChanged?: (session: Session) => void) {
  const t = useT();
  const { api, user, upsertSession, removeSession } = useStore();
  const toast = useToast();
  const [renaming, setRenaming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [sharing, setSharing] = useState(false);
  const [moving, setMoving] = useState(false);
  const lt = useLibraryT();
  const { locale } = useLocale();
  const id = session.id;

  const update = async (change: { title?: string; pinned?: boolean; archived?: boolean; folderId?: bigint }) => {
    try {
      const paths = Object.keys(change).map((key) => (key === "folderId" ? "folder_id" : key));
      const res = await api.sessions.updateSession({ id, ...change, updateMask: { paths } });
      if (res.session) {
        upsertSession(res.session);
        onChanged?.(res.session);
      }
    } catch (err) {
      toast(`${t("couldNotUpdateChat")}: ${describeError(err, t)}`);
    }
  };
  const remove = async () => {
    try {
      await api.sessions.deleteSession({ id });
      removeSession(id.toString());
      writeDraft(chatDraftKey(user.id, id.toString()), "");
      const route = window.location.pathname;
      if (route === routePath({ name: "chat", id: id.toString() })) navigate({ name: "new" }, { replace: true });
    } catch (err) {
      toast(`${t("couldNotDeleteChat")}: ${describeError(err, t)}`);
    }
  };

  const exportAs = async (format: "json" | "markdown") => {
    try {
      await exportChat(api, id, format);
    } catch (err) {
      toast(`${shareLabels[locale].couldNotExport}: ${describeError(err, t)}`);
    }
  };

  const items = [
    { label: t("rename"), icon: <EditIcon />, onSelect: () => setRenaming(true) },
    { label: shareLabels[locale].share, icon: <ShareIcon />, onSelect: () => setSharing(true) },
    { label: shareLabels[locale].markdown, icon: <DownloadIcon />, onSelect: () => void exportAs("markdown") },
    { label: shareLabels[locale].json, icon: <DownloadIcon />, onSelect: () => void exportAs("json") },
    { label: session.pinned ? t("unpin") : t("pin"), icon: <PinIcon />, onSelect: () => void update({ pinned: !session.pinned }) },
    { label: lt("moveToFolder"), icon: <FolderIcon />, onSelect: () => setMoving(true) },
    {
      label: session.archived ? t("unarchive") : t("archive"),
      icon: <ArchiveIcon />,
      onSelect: () => void update({ archived: !session.archived }),
    },
    { label: t("delete"), icon: <TrashIcon />, danger: true, onSelect: () => setDeleting(true) },
  ];

  const modals = (
    <>
      <PromptModal
        open={renaming}
        title={t("rename")}
        label={t("name")}
        initial={session.title || t("untitled")}
        saveLabel={t("save")}
        cancelLabel={t("cancel")}
        onSave={(title) => void update({ title })}
        onClose={() => setRenaming(false)}
      />
      {sharing && (
        <Suspense fallback={null}>
          <ShareDialog api={api} sessionId={id} open={sharing} onClose={() => setSharing(false)} />
        </Suspense>
      )}
      <MoveToFolderDialog
        open={moving}
        session={session}
        onMove={(folderId) => void update({ folderId })}
        onClose={() => setMoving(false)}
      />
      <ConfirmModal
        open={deleting}
        title={t("delete")}
        message={t("deleteChatConfirm")}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => void remove()}
        onClose={() => setDeleting(false)}
      />
    </>
  );
  return { items, modals };
}

function ChatListItem({ session, active }: { session: Session; active: boolean }) {
  const t = useT();
  const { items, modals } = useSessionActions(session);
  const title = session.title || t("untitled");
  const href = routePath({ name: "chat", id: session.id.toString() });
  return (
    <li className={`group relative flex items-center rounded-lg ${active ? "bg-gray-300/70" : "hover:bg-gray-200"}`}>
      <a
        href={href}
        aria-current={active ? "page" : undefined}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          navigate({ name: "chat", id: session.id.toString() });
        }}
        className="flex min-w-0 flex-1 items-center gap-1.5 px-2 py-2 text-sm"
        title={title}
      >
        {session.pinned && <PinIcon width={14} height={14} className="shrink-0 text-gray-500" aria-label={t("pinned")} />}
        {session.archived && <ArchiveIcon width={14} height={14} className="shrink-0 text-gray-500" aria-label={t("archived")} />}
        <span className="truncate" data-testid="chat-title">
          {title}
        </span>
      </a>
      <div className={`pr-1 ${active ? "" : "opacity-100 md:opacity-0 md:group-focus-within:opacity-100 md:group-hover:opacity-100"}`}>
        <Menu label={`${t("chatOptions")}: ${title}`} align="right" buttonClassName="btn-ghost" button={<DotsIcon />} items={items} />
      </div>
      {modals}
    </li>
  );
}
