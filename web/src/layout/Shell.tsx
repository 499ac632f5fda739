import { useEffect, useState } from "react";
import { navigate, useRoute } from "../app/router";
import { Sidebar } from "./Sidebar";
import { ChatView } from "../chat/ChatView";
import { NewChatView } from "../chat/NewChatView";
import { SettingsView } from "../settings/SettingsView";
import { useT } from "../i18n";

// Sidebar on the left (a drawer on phone-sized screens), the routed view on the right.
export function Shell() {
  const t = useT();
  const route = useRoute();
  const [drawerOpen, setDrawerOpen] = useState(false);

  // Any navigation closes the drawer.
  useEffect(() => setDrawerOpen(false), [route]);

  useEffect(() => {
    if (!drawerOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") setDrawerOpen(false);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [drawerOpen]);

  // Ctrl/Cmd+Shift+O starts a new chat, as in ChatGPT.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.shiftKey && e.key.toLowerCase() === "o") {
        e.preventDefault();
        navigate({ name: "new" });
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const openDrawer = () => setDrawerOpen(true);

  return (
    <div className="flex h-full overflow-hidden">
      <a href="#composer" className="sr-only focus:not-sr-only focus:absolute focus:z-50 focus:bg-white focus:p-2">
        {t("skipToComposer")}
      </a>
      {/* Desktop: always there. */}
      <aside className="hidden w-72 shrink-0 border-r border-gray-200 md:flex" aria-label={t("chats")}>
        <Sidebar />
      </aside>
      {/* Phone: a drawer over the chat. */}
      {drawerOpen && (
        <div className="fixed inset-0 z-40 md:hidden" role="dialog" aria-modal="true" aria-label={t("chats")}>
          <div className="absolute inset-0 bg-black/40" onClick={() => setDrawerOpen(false)} aria-hidden="true" />
          <aside className="absolute inset-y-0 left-0 flex w-[85vw] max-w-xs shadow-xl">
            <Sidebar onClose={() => setDrawerOpen(false)} />
          </aside>
        </div>
      )}
      <main className="flex min-w-0 flex-1 flex-col bg-white">
        {route.name === "chat" && <ChatView key={route.id} sessionId={route.id} onOpenSidebar={openDrawer} />}
        {route.name === "new" && <NewChatView onOpenSidebar={openDrawer} />}
        {route.name === "settings" && <SettingsView tab={route.tab} onOpenSidebar={openDrawer} />}
      </main>
    </div>
  );
}
