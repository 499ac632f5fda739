import { useCallback, useEffect, useState } from "react";
import { navigate, routePath } from "../app/router";
import { useStore } from "../app/store";
import { ChatHeader } from "../chat/ChatView";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import { useT } from "../i18n";
import { describeError } from "../ui/errorText";
import { useToast } from "../ui/toast";
import { useLibraryT } from "./strings";

/** The archived chats, a view of their own (the sidebar lists only the others): open one,
 * or unarchive it back into the list. */
export default function ArchivedView({ onOpenSidebar }: { onOpenSidebar: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api, upsertSession } = useStore();
  const toast = useToast();
  const [archived, setArchived] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const all: Session[] = [];
      let pageToken = "";
      for (let page = 0; page < 20; page++) {
        const res = await api.sessions.listSessions({ pageSize: 100, pageToken, onlyArchived: true });
        all.push(...res.sessions);
        pageToken = res.nextPageToken;
        if (!pageToken) break;
      }
      setArchived(all);
    } catch (err) {
      setError(describeError(err, t));
    }
  }, [api, t]);
  useEffect(() => {
    void load();
  }, [load]);

  const unarchive = async (session: Session) => {
    try {
      const res = await api.sessions.updateSession({ id: session.id, archived: false, updateMask: { paths: ["archived"] } });
      setArchived((list) => list?.filter((s) => s.id !== session.id) ?? null);
      if (res.session) upsertSession(res.session);
    } catch (err) {
      toast(`${t("couldNotUpdateChat")}: ${describeError(err, t)}`);
    }
  };

  return (
    <>
      <ChatHeader title={lt("archivedChats")} onOpenSidebar={onOpenSidebar} />
      <div className="min-h-0 flex-1 overflow-y-auto bg-white">
        <div className="mx-auto max-w-3xl space-y-4 px-4 py-6 sm:px-6">
          <p className="text-sm text-gray-600">{lt("archivedIntro")}</p>
          {error && (
            <div role="alert" className="alert-error">
              {lt("couldNotLoadArchive")}: {error}
              <button type="button" className="ml-2 font-medium underline" onClick={() => void load()}>
                {t("retry")}
              </button>
            </div>
          )}
          {archived === null && !error && <p aria-busy="true" className="h-5 w-1/2 animate-pulse rounded bg-gray-200" />}
          {archived?.length === 0 && <p className="text-sm text-gray-500">{lt("noArchivedChats")}</p>}
          {archived && archived.length > 0 && (
            <ul className="divide-y divide-gray-200 rounded-xl border border-gray-200" data-testid="archived-chats">
              {archived.map((s) => {
                const title = s.title || t("untitled");
                return (
                  <li key={s.id.toString()} className="flex items-center gap-3 px-4 py-3">
                    <a
                      href={routePath({ name: "chat", id: s.id.toString() })}
                      onClick={(e) => {
                        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                        e.preventDefault();
                        navigate({ name: "chat", id: s.id.toString() });
                      }}
                      className="min-w-0 flex-1 truncate text-sm font-medium hover:underline"
                      data-testid="archived-chat-title"
                    >
                      {title}
                    </a>
                    <button
                      type="button"
                      className="btn-secondary px-3 py-1.5"
                      onClick={() => void unarchive(s)}
                      aria-label={`${t("unarchive")}: ${title}`}
                    >
                      {t("unarchive")}
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      </div>
    </>
  );
}
