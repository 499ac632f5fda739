import { useEffect, useState } from "react";
import { useStore } from "../app/store";
import { navigate } from "../app/router";
import { describeError } from "../ui/errorText";
import { personaText } from "../ui/personaText";
import { useT } from "../i18n";
import { ChatHeader } from "./ChatView";
import { Composer } from "./Composer";
import { usePromptCommands } from "../library/PromptCommands";
import { forgetRefusedFirstMessage, handOverFirstMessage, newChatDraftKey, refusedFirstMessage, useDraft } from "./drafts";
import { Logo } from "../ui/icons";
import { requestNewConfigForm } from "../settings/configForm";

/** The persona choice that leaves persona and prompt to the user's chat defaults. */
const USE_DEFAULTS = "defaults";

/** A chat not yet created: pick the persona and the API config (the first of each is
 * preselected), write the first message; sending creates the session and opens it. */
export function NewChatView({ onOpenSidebar }: { onOpenSidebar: () => void }) {
  const t = useT();
  // Own configs and granted shared connections alike.
  const { api, user, personas, chatConfigs: configs, catalogLoad, retryCatalog, upsertSession } = useStore();
  // A first message the server refused comes back here with its error and its choices.
  const [refused] = useState(refusedFirstMessage);
  useEffect(forgetRefusedFirstMessage, []);
  const [personaId, setPersonaId] = useState<string>(refused?.personaId?.toString() ?? "");
  const [configId, setConfigId] = useState<string>(refused?.apiConfigId?.toString() ?? "");
  const [draft, setDraft] = useDraft(newChatDraftKey(user.id));
  const slash = usePromptCommands(api, draft, setDraft);
  const [error, setError] = useState<string | null>(refused?.error ?? null);
  const [creating, setCreating] = useState(false);

  // The user's defaults for new chats (Settings → Personas): offered first when they chose
  // some, and applied by the server when the chat names no persona.
  const [hasDefaults, setHasDefaults] = useState(false);
  useEffect(() => {
    let cancelled = false;
    api.chatDefaults.getChatDefaults({}).then(
      (res) => {
        const d = res.defaults;
        if (cancelled || !d || (d.personaId === undefined && !d.systemPrompt)) return;
        setHasDefaults(true);
        if (!refused?.personaId) setPersonaId(USE_DEFAULTS);
      },
      () => {},
    );
    return () => {
      cancelled = true;
    };
  }, [api, refused]);
  useEffect(() => {
    if (personaId === USE_DEFAULTS && hasDefaults) return;
    if (personas.length > 0 && !personas.some((p) => p.id.toString() === personaId)) setPersonaId(personas[0].id.toString());
  }, [personas, personaId, hasDefaults]);
  useEffect(() => {
    if (configs.length > 0 && !configs.some((c) => c.id.toString() === configId)) setConfigId(configs[0].id.toString());
  }, [configs, configId]);

  const persona = personas.find((p) => p.id.toString() === personaId);
  const config = configs.find((c) => c.id.toString() === configId);
  const ready = catalogLoad.status === "ready";

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
      // The text moves to the new chat's box, which sends it once the chat has loaded.
      handOverFirstMessage(user.id, res.session.id.toString(), content);
      setDraft("");
      navigate({ name: "chat", id: res.session.id.toString() });
    } catch (err) {
      // The text stays in the box.
      setError(describeError(err, t));
      setCreating(false);
    }
  };

  return (
    <>
      <ChatHeader
        title={persona ? personaText(persona, t).name : t("newChat")}
        subtitle={config && <span className="truncate">{config.model}</span>}
        onOpenSidebar={onOpenSidebar}
      />
      <div className="min-h-0 flex-1 overflow-y-auto bg-white">
        <div className="mx-auto flex max-w-2xl flex-col items-center px-4 py-10 sm:py-16">
          <Logo className="mb-4 h-12 w-12 rounded-xl bg-black p-1" />
          <h2 className="text-center text-2xl font-semibold">{t("startChatTitle")}</h2>
          <p className="mt-2 text-center text-sm text-gray-500">{t("startChatSub")}</p>
          {catalogLoad.status === "failed" ? (
            <div role="alert" className="alert-error mt-8 w-full" data-testid="catalog-error">
              <p className="break-words">
                {t("catalogLoadFailed")}: {catalogLoad.error}
              </p>
              <button type="button" className="mt-1 font-medium underline" onClick={retryCatalog}>
                {t("retry")}
              </button>
            </div>
          ) : ready && configs.length === 0 ? (
            <div className="mt-8 w-full rounded-xl border border-amber-200 bg-amber-50 p-4 text-sm text-amber-900">
              <p>{t("needConfig")}</p>
              <button
                type="button"
                className="btn-primary mt-3"
                onClick={() => {
                  // The form opens at once, and offers the way back once saved.
                  requestNewConfigForm({ name: "new" });
                  navigate({ name: "settings", tab: "api-configs" });
                }}
              >
                {t("addConfig")}
              </button>
            </div>
          ) : (
            <div className="mt-8 grid w-full gap-4 sm:grid-cols-2" aria-busy={!ready}>
              <div>
                <label htmlFor="new-chat-persona" className="field-label">
                  {t("persona")}
                </label>
                <select
                  id="new-chat-persona"
                  className="input"
                  value={personaId}
                  onChange={(e) => setPersonaId(e.target.value)}
                  disabled={!ready}
                >
                  {hasDefaults && <option value={USE_DEFAULTS}>{t("myChatDefaults")}</option>}
                  {personas.map((p) => (
                    <option key={p.id.toString()} value={p.id.toString()}>
                      {personaText(p, t).name}
                    </option>
                  ))}
                </select>
                {persona?.description && <p className="mt-1 text-xs text-gray-500">{personaText(persona, t).description}</p>}
              </div>
              <div>
                <label htmlFor="new-chat-config" className="field-label">
                  {t("apiConfig")}
                </label>
                <select
                  id="new-chat-config"
                  className="input"
                  value={configId}
                  onChange={(e) => setConfigId(e.target.value)}
                  disabled={!ready}
                >
                  {configs.map((c) => (
                    <option key={c.id.toString()} value={c.id.toString()}>
                      {c.name} · {c.model}
                      {c.shared ? ` (${t("shared")})` : ""}
                    </option>
                  ))}
                </select>
              </div>
            </div>
          )}
          {error && (
            <p role="alert" className="alert-error mt-6 w-full" data-testid="new-chat-error">
              {error}
            </p>
          )}
        </div>
      </div>
      <Composer
        value={draft}
        onChange={slash.onChange}
        onSend={() => void start()}
        streaming={false}
        disabled={creating || !ready || configs.length === 0}
        placeholder={t("messagePlaceholder", { name: persona ? personaText(persona, t).name : t("appName") })}
        autoFocus
        onKeyDownFirst={slash.onKeyDownFirst}
        inputAria={slash.inputAria}
        suggestions={slash.suggestions}
      />
      {slash.dialog}
    </>
  );
}
