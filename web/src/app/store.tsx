import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import type { Api } from "../api/client";
import type { User } from "../gen/parley/user/v1/user_pb";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import type { Persona } from "../gen/parley/chat/v1/persona_pb";
import type { ApiConfig } from "../gen/parley/chat/v1/api_config_pb";

interface Store {
  api: Api;
  user: User;
  setUser: (user: User) => void;
  sessions: Session[];
  showArchived: boolean;
  setShowArchived: (show: boolean) => void;
  reloadSessions: () => Promise<void>;
  /** Puts a changed session into the list (a new title, a rename) without a round trip. */
  upsertSession: (session: Session) => void;
  removeSession: (id: string) => void;
  personas: Persona[];
  reloadPersonas: () => Promise<void>;
  configs: ApiConfig[];
  reloadConfigs: () => Promise<void>;
  loaded: boolean;
}

const StoreContext = createContext<Store | null>(null);

export function useStore(): Store {
  const store = useContext(StoreContext);
  if (!store) throw new Error("useStore outside StoreProvider");
  return store;
}

/** Pinned first, then most recently active, as ListSessions orders them. */
export function sortSessions(sessions: Session[]): Session[] {
  const active = (s: Session) => Number(s.lastActiveAt?.seconds ?? s.updatedAt?.seconds ?? 0n);
  return [...sessions].sort((a, b) => Number(b.pinned) - Number(a.pinned) || active(b) - active(a) || Number(b.id - a.id));
}

export function StoreProvider({ api, user: initialUser, children }: { api: Api; user: User; children: ReactNode }) {
  const [user, setUser] = useState(initialUser);
  const [sessions, setSessions] = useState<Session[]>([]);
  const [showArchived, setShowArchived] = useState(false);
  const [personas, setPersonas] = useState<Persona[]>([]);
  const [configs, setConfigs] = useState<ApiConfig[]>([]);
  const [loaded, setLoaded] = useState(false);

  const reloadSessions = useCallback(async () => {
    const all: Session[] = [];
    let pageToken = "";
    // Every page: the sidebar is the index of the user's chats.
    for (let page = 0; page < 20; page++) {
      const res = await api.sessions.listSessions({ pageSize: 100, pageToken, includeArchived: showArchived });
      all.push(...res.sessions);
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    setSessions(all);
  }, [api, showArchived]);

  const reloadPersonas = useCallback(async () => {
    const res = await api.personas.listPersonas({});
    setPersonas(res.personas);
  }, [api]);

  const reloadConfigs = useCallback(async () => {
    const res = await api.apiConfigs.listApiConfigs({});
    setConfigs(res.apiConfigs);
  }, [api]);

  useEffect(() => {
    let cancelled = false;
    Promise.allSettled([reloadPersonas(), reloadConfigs()]).then(() => {
      if (!cancelled) setLoaded(true);
    });
    return () => {
      cancelled = true;
    };
  }, [reloadPersonas, reloadConfigs]);

  useEffect(() => {
    reloadSessions().catch(() => {});
  }, [reloadSessions]);

  const upsertSession = useCallback(
    (session: Session) =>
      setSessions((list) => {
        const others = list.filter((s) => s.id !== session.id);
        if (session.archived && !showArchived) return others;
        return sortSessions([...others, session]);
      }),
    [showArchived],
  );
  const removeSession = useCallback((id: string) => setSessions((list) => list.filter((s) => s.id.toString() !== id)), []);

  const value = useMemo<Store>(
    () => ({
      api,
      user,
      setUser,
      sessions,
      showArchived,
      setShowArchived,
      reloadSessions,
      upsertSession,
      removeSession,
      personas,
      reloadPersonas,
      configs,
      reloadConfigs,
      loaded,
    }),
    [
      api,
      user,
      sessions,
      showArchived,
      reloadSessions,
      upsertSession,
      removeSession,
      personas,
      reloadPersonas,
      configs,
      reloadConfigs,
      loaded,
    ],
  );
  return <StoreContext.Provider value={value}>{children}</StoreContext.Provider>;
}
