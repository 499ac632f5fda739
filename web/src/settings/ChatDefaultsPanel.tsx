import { useEffect, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { useT } from "../i18n";
import { describeError } from "../ui/errorText";
import type { ChatDefaults } from "../gen/parley/chat/v1/chat_defaults_pb";
import { PersonaPromptFields, SamplingFields } from "../chat/ChatSettingsPanel";
import { changedSamplingPaths, parseSampling, samplingText, type SamplingText } from "../chat/chatSettings";

/** What new chats start with: a persona, a system prompt and sampling settings, kept on the
 * server for the account (every device starts chats the same way). */
export function ChatDefaultsPanel() {
  const t = useT();
  const { api } = useStore();
  const [stored, setStored] = useState<ChatDefaults | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [personaId, setPersonaId] = useState<bigint | undefined>();
  const [prompt, setPrompt] = useState("");
  const [sampling, setSampling] = useState<SamplingText>({ temperature: "", topP: "", maxTokens: "" });
  const [showProblems, setShowProblems] = useState(false);
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const show = (d: ChatDefaults) => {
    setStored(d);
    setPersonaId(d.personaId);
    setPrompt(d.systemPrompt);
    setSampling(samplingText({ temperature: d.temperature, topP: d.topP, maxTokens: d.maxTokens }));
  };

  useEffect(() => {
    api.chatDefaults.getChatDefaults({}).then(
      (res) => res.defaults && show(res.defaults),
      (err: unknown) => setLoadError(describeError(err, t)),
    );
    // Once.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api]);

  const parsed = parseSampling(sampling);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!stored) return;
    setShowProblems(true);
    setStatus(null);
    if (Object.keys(parsed.problems).length > 0) return;
    const paths = changedSamplingPaths({ temperature: stored.temperature, topP: stored.topP, maxTokens: stored.maxTokens }, parsed.values);
    if (prompt !== stored.systemPrompt) paths.push("system_prompt");
    if (personaId !== stored.personaId) paths.push("persona_id");
    if (paths.length === 0) {
      setStatus({ ok: true, text: t("saved") });
      return;
    }
    setBusy(true);
    try {
      const res = await api.chatDefaults.updateChatDefaults({
        personaId: personaId ?? 0n,
        systemPrompt: prompt,
        temperature: parsed.values.temperature,
        topP: parsed.values.topP,
        maxTokens: parsed.values.maxTokens,
        updateMask: { paths },
      });
      if (res.defaults) show(res.defaults);
      setStatus({ ok: true, text: t("saved") });
    } catch (err) {
      setStatus({ ok: false, text: `${t("couldNotSaveSettings")}: ${describeError(err, t)}` });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="space-y-3" aria-labelledby="chat-defaults-title" data-testid="chat-defaults">
      <h2 id="chat-defaults-title" className="text-lg font-semibold">
        {t("chatDefaults")}
      </h2>
      <p className="text-sm text-gray-600">{t("chatDefaultsIntro")}</p>
      {loadError && (
        <p role="alert" className="alert-error">
          {loadError}
        </p>
      )}
      {stored && (
        <form onSubmit={save} className="space-y-3 rounded-xl border border-gray-200 bg-gray-50 p-4" noValidate>
          <PersonaPromptFields
            idPrefix="chat-defaults"
            personaId={personaId}
            prompt={prompt}
            onChange={(nextPersona, nextPrompt) => {
              setPersonaId(nextPersona);
              setPrompt(nextPrompt);
            }}
          />
          <SamplingFields idPrefix="chat-defaults" value={sampling} onChange={setSampling} problems={showProblems ? parsed.problems : {}} />
          {status && (
            <p role={status.ok ? "status" : "alert"} className={status.ok ? "alert-ok" : "alert-error"}>
              {status.text}
            </p>
          )}
          <div className="flex justify-end">
            <button type="submit" className="btn-primary" disabled={busy}>
              {t("save")}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
