import { useEffect, useState } from "react";

// A handful of routes, so the history API is enough: a reload keeps the open chat.
export type Route =
  | { name: "new" }
  | { name: "chat"; id: string }
  | { name: "room"; id: string }
  /** An invite link: joins the room with the code, then opens it. */
  | { name: "roomJoin"; code: string }
  | { name: "settings"; tab: SettingsTab }
  /** The archived chats, a view of their own. */
  | { name: "archived" }
  | { name: "admin" };

export type SettingsTab = "profile" | "password" | "api-configs" | "personas" | "prompts" | "usage" | "data" | "notifications";
const tabs: SettingsTab[] = ["profile", "password", "api-configs", "personas", "prompts", "usage", "data", "notifications"];

export function parseRoute(path: string): Route {
  const chat = /^\/c\/(\d+)\/?$/.exec(path);
  if (chat) return { name: "chat", id: chat[1] };
  const room = /^\/rooms\/(\d+)\/?$/.exec(path);
  if (room) return { name: "room", id: room[1] };
  const join = /^\/rooms\/join\/([^/]+)\/?$/.exec(path);
  if (join) return { name: "roomJoin", code: decodeURIComponent(join[1]) };
  if (/^\/admin\/?$/.test(path)) return { name: "admin" };
  if (/^\/archived\/?$/.test(path)) return { name: "archived" };
  const settings = /^\/settings\/([a-z-]+)\/?$/.exec(path);
  if (settings && (tabs as string[]).includes(settings[1])) return { name: "settings", tab: settings[1] as SettingsTab };
  return { name: "new" };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case "new":
      return "/";
    case "chat":
      return `/c/${route.id}`;
    case "room":
      return `/rooms/${route.id}`;
    case "roomJoin":
      return `/rooms/join/${encodeURIComponent(route.code)}`;
    case "settings":
      return `/settings/${route.tab}`;
    case "admin":
      return "/admin";
    case "archived":
      return "/archived";
  }
}

const listeners = new Set<() => void>();

export function navigate(route: Route, options: { replace?: boolean } = {}): void {
  const path = routePath(route);
  if (path !== window.location.pathname) {
    if (options.replace) window.history.replaceState(null, "", path);
    else window.history.pushState(null, "", path);
  }
  for (const listener of listeners) listener();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.pathname));
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return route;
}
