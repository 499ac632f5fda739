import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { navigate, useRoute } from "../app/router";
import { Sidebar } from "./Sidebar";
import { Drawer } from "./Drawer";
import { ChatView } from "../chat/ChatView";
import { NewChatView } from "../chat/NewChatView";
import { useT } from "../i18n";
import { useStore } from "../app/store";
import { Role } from "../gen/parley/user/v1/user_pb";
import { ShortcutsDialog } from "./ShortcutsDialog";
import { PlusIcon, SidebarIcon } from "../ui/icons";

const collapsedKey = "parley.sidebar-collapsed";

function readCollapsed(): boolean {
  try {
    return localStorage.getItem(collapsedKey) === "1";
  } catch {
    return false;
  }
}

// Tailwind's `md`: from here on the sidebar sits beside the chat, below it is the phone's drawer.
const wideScreen = "(min-width: 48rem)";

/** Whether the screen is wide enough for the sidebar beside the chat (without matchMedia, as
 * in tests: yes). A phone then never renders the desktop sidebar it would hide, nor fetches its
 * lists and the rooms' chunk and stream, while a chat is opening. */
function useWideScreen(): boolean {
  const [wide, setWide] = useState(() => typeof window.matchMedia !== "function" || window.matchMedia(wideScreen).matches);
  useEffect(() => {
    if (typeof window.matchMedia !== "function") return;
    const query = window.matchMedia(wideScreen);
    const update = () => setWide(query.matches);
    update();
    query.addEventListener("change", update);
    return () => query.removeEventListener("change", update);
  }, []);
  return wide;
}

/** Where typing a "?" is text, not a shortcut. */
function typingIn(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement ||
    (target instanceof HTMLElement && target.isContentEditable)
  );
}

// Settings are their own chunk, fetched when first opened.
const SettingsView = lazy(() => import("../settings/SettingsView"));
// Administration too, fetched only by an administrator who opens it.
const AdminView = lazy(() => import("../admin/AdminView"));
// The archived chats: a chunk of its own, fetched when the view opens.
const ArchivedView = lazy(() => import("../library/ArchivedView"));
// Rooms are their own chunk too (the sidebar's list fetches it right after sign-in).
const RoomView = lazy(() => import("../rooms").then((m) => ({ default: m.RoomView })));
const RoomJoin = lazy(() => import("../rooms").then((m) => ({ default: m.RoomJoin })));

// Sidebar on the left (a drawer on phone-sized screens), the routed view on the right.
export function Shell() {
  const t = useT();
  const route = useRoute();
  const isAdmin = useStore().user.role === Role.ADMIN;
  const [drawerOpen, setDrawerOpen] = useState(false);
  const wide = useWideScreen();
  const [shortcutsOpen, setShortcutsOpen] = useState(false);
  // Desktop: the sidebar folds away to a rail, and stays so in this browser.
  const [collapsed, setCollapsedState] = useState(readCollapsed);
  const setCollapsed = (next: boolean) => {
    setCollapsedState(next);
    try {
      if (next) localStorage.setItem(collapsedKey, "1");
      else localStorage.removeItem(collapsedKey);
    } catch {
      // Private mode: for this page only.
    }
  };
  const toggleCollapsed = useRef(() => {});
  toggleCollapsed.current = () => setCollapsed(!collapsed);

  // Any navigation closes the drawer.
  useEffect(() => setDrawerOpen(false), [route]);

  // Ctrl/Cmd+Shift+O starts a new chat, as in ChatGPT; Alt+Shift+S folds the sidebar; "?"
  // (outside a text field) or Ctrl/Cmd+/ lists the shortcuts.
  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.shiftKey && e.key.toLowerCase() === "o") {
        e.preventDefault();
        navigate({ name: "new" });
      } else if (e.altKey && e.shiftKey && e.code === "KeyS") {
        e.preventDefault();
        toggleCollapsed.current();
      } else if (
        (e.key === "?" && !e.ctrlKey && !e.metaKey && !e.altKey && !typingIn(e.target)) ||
        ((e.ctrlKey || e.metaKey) && e.key === "/")
      ) {
        e.preventDefault();
        setShortcutsOpen(true);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const openDrawer = () => setDrawerOpen(true);
  // Settings pages have no message box: the link skips to the page's content there.
  const skip =
    route.name === "settings" || route.name === "admin" || route.name === "archived"
      ? { target: "main-content", label: t("skipToContent") }
      : { target: "composer", label: t("skipToComposer") };

  return (
    <div className="flex h-full overflow-hidden">
      <a
        href={`#${skip.target}`}
        inert={drawerOpen}
        onClick={(e) => {
          const target = document.getElementById(skip.target);
          if (!target) return;
          e.preventDefault();
          target.focus();
          // A box that cannot take focus yet (the chat is loading): the content instead.
          if (document.activeElement !== target) document.getElementById("main-content")?.focus();
        }}
        className="sr-only focus:not-sr-only focus:absolute focus:z-50 focus:bg-white focus:p-2"
      >
        {skip.label}
      </a>
      {/* Desktop: there, or folded to a rail. */}
      {!wide ? null : collapsed ? (
        <div
          className="hidden w-12 shrink-0 flex-col items-center gap-1 border-r border-gray-200 bg-gray-100 py-2 md:flex"
          data-testid="sidebar-rail"
        >
          <button
            type="button"
            className="btn-ghost"
            onClick={() => setCollapsed(false)}
            aria-label={t("expandSidebar")}
            title={t("expandSidebar")}
            aria-expanded={false}
          >
            <SidebarIcon />
          </button>
          <button
            type="button"
            className="btn-ghost"
            onClick={() => navigate({ name: "new" })}
            aria-label={t("newChat")}
            title={t("newChat")}
          >
            <PlusIcon />
          </button>
        </div>
      ) : (
        <aside className="hidden w-72 shrink-0 border-r border-gray-200 md:flex" aria-label={t("chats")}>
          <Sidebar onCollapse={() => setCollapsed(true)} onShowShortcuts={() => setShortcutsOpen(true)} />
        </aside>
      )}
      {/* Phone: a drawer over the chat. */}
      {drawerOpen && (
        <Drawer label={t("chats")} onClose={() => setDrawerOpen(false)}>
          <Sidebar onClose={() => setDrawerOpen(false)} onShowShortcuts={() => setShortcutsOpen(true)} />
        </Drawer>
      )}
      <main id="main-content" tabIndex={-1} inert={drawerOpen} className="flex min-w-0 flex-1 flex-col bg-white outline-none">
        {route.name === "chat" && <ChatView key={route.id} sessionId={route.id} onOpenSidebar={openDrawer} />}
        {route.name === "new" && <NewChatView onOpenSidebar={openDrawer} />}
        {(route.name === "room" || route.name === "roomJoin") && (
          <Suspense fallback={<div className="flex-1" aria-busy="true" />}>
            {route.name === "room" ? (
              <RoomView key={route.id} roomId={route.id} onOpenSidebar={openDrawer} />
            ) : (
              <RoomJoin code={route.code} onOpenSidebar={openDrawer} />
            )}
          </Suspense>
        )}
        {route.name === "settings" && (
          <Suspense fallback={<div className="flex-1" aria-busy="true" />}>
            <SettingsView tab={route.tab} onOpenSidebar={openDrawer} />
          </Suspense>
        )}
        {route.name === "archived" && (
          <Suspense fallback={<div className="flex-1" aria-busy="true" />}>
            <ArchivedView onOpenSidebar={openDrawer} />
          </Suspense>
        )}
        {route.name === "admin" &&
          (isAdmin ? (
            <Suspense fallback={<div className="flex-1" aria-busy="true" />}>
              <AdminView onOpenSidebar={openDrawer} />
            </Suspense>
          ) : (
            <p className="p-6 text-sm text-gray-600">{t("adminOnly")}</p>
          ))}
      </main>
      <ShortcutsDialog open={shortcutsOpen} onClose={() => setShortcutsOpen(false)} />
    </div>
  );
}
