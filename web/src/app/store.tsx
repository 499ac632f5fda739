import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { Code } from "@connectrpc/connect";
import { errorCode, errorMessage, type Api } from "../api/client";
import type { User } from "../gen/parley/user/v1/user_pb";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import type { Folder } from "../gen/parley/chat/v1/folder_pb";
import type { Persona } from "../gen/parley/chat/v1/persona_pb";
import type { ApiConfig } from "../gen/parley/chat/v1/api_config_pb";
import type { AvailableSharedConnection } from "../gen/parley/chat/v1/shared_connection_pb";
import { chatConfigs as joinChatConfigs, type ChatConfig } from "../chat/chatConfigs";

/** Where a list the page reads from the server stands. */
export type LoadState = { status: "loading" } | { status: "ready" } | { status: "failed"; error: string };

interface Store {
  api: Api;
  user: User;
  setUser: (user: User) => void;
  sessions: Session[];
  sessionsLoad: LoadState;
  /** The user's chat folders, by name; the sidebar groups chats by them. */
  folders: Folder[];
  reloadFolders: () => Promise<void>;
  /** Reads the whole chat list again; a response that a newer reload overtook is dropped. */
  reloadSessions: () => Promise<void>;
  /** Reads one chat again (it just answered, or got a title) instead of the whole list;
   * resolves what it read, or null when it could not. */
  refreshSession: (id: bigint) => Promise<Session | null>;
  /** Puts a changed session into the list (a new title, a rename) without a round trip. */
  upsertSession: (session: Session) => void;
  removeSession: (id: string) => void;
  personas: Persona[];
  reloadPersonas: () => Promise<void>;
  configs: ApiConfig[];
  /** Own configs, then the shared connections the user may chat with: what chats pick from. */
  chatConfigs: ChatConfig[];
  reloadConfigs: () => Promise<void>;
  /** Personas and API configs, which a new chat needs. */
  catalogLoad: LoadState;
  retryCatalog: () => void;
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

/** The list with `session` put in (or taken out: null, or archived: the archive is a view of
 * its own). */
function withSession(list: Session[], id: string, session: Session | null): Session[] {
  const others = list.filter((s) => s.id.toString() !== id);
  if (!session || session.archived) return others;
  return [...others, session];
}

export function StoreProvider({ api, user: initialUser, children }: { api: Api; user: User; children: ReactNode }) {
  const [user, setUser] = useState(initialUser);
  const [sessions, setSessions] = useState<Session[]>([]);
  const [sessionsLoad, setSessionsLoad] = useState<LoadState>({ status: "loading" });
  const [folders, setFolders] = useState<Folder[]>([]);
  const [personas, setPersonas] = useState<Persona[]>([]);
  const [configs, setConfigs] = useState<ApiConfig[]>([]);
  const [sharedConfigs, setSharedConfigs] = useState<AvailableSharedConnection[]>([]);
  const [catalogLoad, setCatalogLoad] = useState<LoadState>({ status: "loading" });
  const [catalogAttempt, setCatalogAttempt] = useState(0);

  // Each reload gets a number; only the newest one's answer is applied. Changes made here
  // while it runs (a new chat, a rename) are applied over its answer, which may predate them.
  const reloadSeq = useRef(0);
  const editsDuringReload = useRef(new Map<string, Session | null>());

  const reloadSessions = useCallback(async () => {
    const seq = ++reloadSeq.current;
    editsDuringReload.current = new Map();
    setSessionsLoad((prev) => (prev.status === "failed" ? { status: "loading" } : prev));
    const all: Session[] = [];
    let pageToken = "";
    try {
      // Every page: the sidebar is the index of the user's chats.
      for (let page = 0; page < 20; page++) {
        const res = await api.sessions.listSessions({ pageSize: 100, pageToken });
        if (seq !== reloadSeq.current) return;
        all.push(...res.sessions);
        pageToken = res.nextPageToken;
        if (!pageToken) break;
      }
    } catch (err) {
      if (seq === reloadSeq.current) setSessionsLoad({ status: "failed", error: errorMessage(err) });
      return;
    }
    if (seq !== reloadSeq.current) return;
    let list = all;
    for (const [id, session] of editsDuringReload.current) list = withSession(list, id, session);
    setSessions(sortSessions(list));
    setSessionsLoad({ status: "ready" });
  }, [api]);

  const edit = useCallback((id: string, session: Session | null) => {
    editsDuringReload.current.set(id, session);
    setSessions((list) => sortSessions(withSession(list, id, session)));
  }, []);
  const upsertSession = useCallback((session: Session) => edit(session.id.toString(), session), [edit]);
  // How often each chat was removed here: an answer read before a removal (a GetSession that
  // crossed a DeleteSession) must not put the chat back.
  const removals = useRef(new Map<string, number>());
  const removeSession = useCallback(
    (id: string) => {
      removals.current.set(id, (removals.current.get(id) ?? 0) + 1);
      edit(id, null);
    },
    [edit],
  );

  const refreshSession = useCallback(
    async (id: bigint): Promise<Session | null> => {
      const removedBefore = removals.current.get(id.toString()) ?? 0;
      try {
        const res = await api.sessions.getSession({ id });
        if ((removals.current.get(id.toString()) ?? 0) !== removedBefore) return null;
        if (res.session) upsertSession(res.session);
        return res.session ?? null;
      } catch (err) {
        if (errorCode(err) === Code.NotFound) removeSession(id.toString());
        // Otherwise the list keeps what it had; the next reload corrects it.
        return null;
      }
    },
    [api, upsertSession, removeSession],
  );

  const reloadPersonas = useCallback(async () => {
    const res = await api.personas.listPersonas({});
    setPersonas(res.personas);
  }, [api]);

  const reloadConfigs = useCallback(async () => {
    const [res, shared] = await Promise.all([api.apiConfigs.listApiConfigs({}), api.sharedConnections.listAvailableSharedConnections({})]);
    setConfigs(res.apiConfigs);
    setSharedConfigs(shared.sharedConnections);
  }, [api]);
  const chatConfigs = useMemo(() => joinChatConfigs(configs, sharedConfigs), [configs, sharedConfigs]);

  useEffect(() => {
    let cancelled = false;
    setCatalogLoad({ status: "loading" });
    Promise.all([reloadPersonas(), reloadConfigs()]).then(
      () => {
        if (!cancelled) setCatalogLoad({ status: "ready" });
      },
      (err: unknown) => {
        if (!cancelled) setCatalogLoad({ status: "failed", error: errorMessage(err) });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [reloadPersonas, reloadConfigs, catalogAttempt]);
  const retryCatalog = useCallback(() => setCatalogAttempt((n) => n + 1), []);

  useEffect(() => {
    void reloadSessions();
  }, [reloadSessions]);

  // Folders only group the list: one that cannot be read leaves the chats ungrouped.
  const reloadFolders = useCallback(async () => {
    const res = await api.folders.listFolders({});
    setFolders(res.folders);
  }, [api]);
  useEffect(() => {
    reloadFolders().catch(() => {});
  }, [reloadFolders]);

  const value = useMemo<Store>(
    () => ({
      api,
      user,
      setUser,
      sessions,
      sessionsLoad,
      folders,
      reloadFolders,
      reloadSessions,
      refreshSession,
      upsertSession,
      removeSession,
      personas,
      reloadPersonas,
      configs,
      chatConfigs,
      reloadConfigs,
      catalogLoad,
      retryCatalog,
    }),
    [
      api,
      user,
      sessions,
      sessionsLoad,
      folders,
      reloadFolders,
      reloadSessions,
      refreshSession,
      upsertSession,
      removeSession,
      personas,
      reloadPersonas,
      configs,
      chatConfigs,
      reloadConfigs,
      catalogLoad,
      retryCatalog,
    ],
  );
  return <StoreContext.Provider value={value}>{children}</StoreContext.Provider>;
}
