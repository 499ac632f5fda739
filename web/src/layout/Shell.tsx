import { lazy, Suspense, useEffect, useState } from "react";
import { navigate, useRoute } from "../app/router";
import { Sidebar } from "./Sidebar";
import { Drawer } from "./Drawer";
import { ChatView } from "../chat/ChatView";
import { NewChatView } from "../chat/NewChatView";
import { useT } from "../i18n";
import { useStore } from "../app/store";
import { Role } from "../gen/parley/user/v1/user_pb";

// Settings are their own chunk, fetched when first opened.
const SettingsView = lazy(() => import("../settings/SettingsView"));
// Administration too, fetched only by an administrator who opens it.
const AdminView = lazy(() => import("../admin/AdminView"));

// Sidebar on the left (a drawer on phone-sized screens), the routed view on the right.
export function Shell() {
  const t = useT();
  const route = useRoute();
  const isAdmin = useStore().user.role === Role.ADMIN;
  const [drawerOpen, setDrawerOpen] = useState(false);

  // Any navigation closes the drawer.
  useEffect(() => setDrawerOpen(false), [route]);

  // Ctrl/Cmd+Shift+O starts a new chat, as in ChatGPT.
  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.shiftKey && e.key.toLowerCase() === "o") {
        e.preventDefault();
        navigate({ name: "new" });
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const openDrawer = () => setDrawerOpen(true);
  // Settings pages have no message box: the link skips to the page's content there.
  const skip =
    route.name === "settings" || route.name === "admin"
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
      {/* Desktop: always there. */}
      <aside className="hidden w-72 shrink-0 border-r border-gray-200 md:flex" aria-label={t("chats")}>
        <Sidebar />
      </aside>
      {/* Phone: a drawer over the chat. */}
      {drawerOpen && (
        <Drawer label={t("chats")} onClose={() => setDrawerOpen(false)}>
          <Sidebar onClose={() => setDrawerOpen(false)} />
        </Drawer>
      )}
      <main id="main-content" tabIndex={-1} inert={drawerOpen} className="flex min-w-0 flex-1 flex-col bg-white outline-none">
        {route.name === "chat" && <ChatView key={route.id} sessionId={route.id} onOpenSidebar={openDrawer} />}
        {route.name === "new" && <NewChatView onOpenSidebar={openDrawer} />}
        {route.name === "settings" && (
          <Suspense fallback={<div className="flex-1" aria-busy="true" />}>
            <SettingsView tab={route.tab} onOpenSidebar={openDrawer} />
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
    </div>
  );
}
