import { useEffect, useState } from "react";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { errorMessage } from "../api/client";
import { useT } from "../i18n";
import { ChatHeader } from "./ChatView";
import { Composer } from "./Composer";
import { setPendingMessage } from "./pending";
import { Logo } from "../ui/icons";

/** A chat not yet created: pick the persona and the API config (the first of each is
 * preselected), write the first message; sending creates the session and opens it. */
export function NewChatView({ onOpenSidebar }: { onOpenSidebar: () => void }) {
  const t = useT();
  const { api, personas, configs, loaded, upsertSession } = useStore();
  const [personaId, setPersonaId] = useState<string>("");
  const [configId, setConfigId] = useState<string>("");
  const [draft, setDraft] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);

  useEffect(() => {
    if (!personaId && personas.length > 0) setPersonaId(personas[0].id.toString());
  }, [personas, personaId]);
  useEffect(() => {
    if (!configId && configs.length > 0) setConfigId(configs[0].id.toString());
  }, [configs, configId]);

  const persona = personas.find((p) => p.id.toString() === personaId);
  const config = configs.find((c) => c.id.toString() === configId);

  const start = async () => {
    const content = draft.trim();
    if (!content) return;
    setCreating(true);
    setError(null);
    try {
      const res = await api.sessions.createSession({
        personaId: persona ? persona.id : undefined,
        apiConfigId: config ? config.id : undefined,
      });
      if (!res.session) throw new Error("no session in the answer");
      upsertSession(res.session);
      setPendingMessage(res.session.id.toString(), content);
      navigate({ name: "chat", id: res.session.id.toString() });
    } catch (err) {
      // The text stays in the box.
      setError(errorMessage(err));
      setCreating(false);
    }
  };

  return (
    <>
      <ChatHeader
        title={persona?.name ?? t("newChat")}
        subtitle={config && <span className="truncate">{config.model}</span>}
        onOpenSidebar={onOpenSidebar}
      />
      <div className="min-h-0 flex-1 overflow-y-auto bg-white">
        <div className="mx-auto flex max-w-2xl flex-col items-center px-4 py-10 sm:py-16">
          <Logo className="mb-4 h-12 w-12 rounded-xl bg-black p-1" />
          <h2 className="text-center text-2xl font-semibold">{t("startChatTitle")}</h2>
          <p className="mt-2 text-center text-sm text-gray-500">{t("startChatSub")}</p>
          {loaded && configs.length === 0 ? (
            <div className="mt-8 w-full rounded-xl border border-amber-200 bg-amber-50 p-4 text-sm text-amber-900">
              <p>{t("needConfig")}</p>
              <button type="button" className="btn-primary mt-3" onClick={() => navigate({ name: "settings", tab: "api-configs" })}>
                {t("addConfig")}
              </button>
            </div>
          ) : (
            <div className="mt-8 grid w-full gap-4 sm:grid-cols-2">
              <div>
                <label htmlFor="new-chat-persona" className="field-label">
                  {t("persona")}
                </label>
                <select id="new-chat-persona" className="input" value={personaId} onChange={(e) => setPersonaId(e.target.value)}>
                  {personas.map((p) => (
                    <option key={p.id.toString()} value={p.id.toString()}>
                      {p.name}
                    </option>
                  ))}
                </select>
                {persona?.description && <p className="mt-1 text-xs text-gray-500">{persona.description}</p>}
              </div>
              <div>
                <label htmlFor="new-chat-config" className="field-label">
                  {t("apiConfig")}
                </label>
                <select id="new-chat-config" className="input" value={configId} onChange={(e) => setConfigId(e.target.value)}>
                  {configs.map((c) => (
                    <option key={c.id.toString()} value={c.id.toString()}>
                      {c.name} · {c.model}
                    </option>
                  ))}
                </select>
              </div>
            </div>
          )}
          {error && (
            <p role="alert" className="alert-error mt-6 w-full">
              {error}
            </p>
          )}
        </div>
      </div>
      <Composer
        value={draft}
        onChange={setDraft}
        onSend={() => void start()}
        streaming={false}
        disabled={creating || !loaded || configs.length === 0}
        placeholder={t("messagePlaceholder", { name: persona?.name ?? t("appName") })}
        autoFocus
      />
    </>
  );
}
