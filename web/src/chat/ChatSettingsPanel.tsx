import { useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { useT } from "../i18n";
import { describeError } from "../ui/errorText";
import { Modal } from "../ui/Modal";
import { SlidersIcon } from "../ui/icons";
import { personaText } from "../ui/personaText";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import { changedSamplingPaths, parseSampling, samplingText, type Problem, type SamplingText } from "./chatSettings";

/** Temperature, top-p and max tokens as text fields, each with its range and its problem. */
export function SamplingFields({
  idPrefix,
  value,
  onChange,
  problems,
}: {
  idPrefix: string;
  value: SamplingText;
  onChange: (value: SamplingText) => void;
  problems: Partial<Record<keyof SamplingText, Problem>>;
}) {
  const t = useT();
  const fields: {
    field: keyof SamplingText;
    label: "temperature" | "topP" | "maxTokens";
    hint: "temperatureHint" | "topPHint" | "maxTokensHint";
    numeric: "decimal" | "numeric";
  }[] = [
    { field: "temperature", label: "temperature", hint: "temperatureHint", numeric: "decimal" },
    { field: "topP", label: "topP", hint: "topPHint", numeric: "decimal" },
    { field: "maxTokens", label: "maxTokens", hint: "maxTokensHint", numeric: "numeric" },
  ];
  return (
    <div className="grid gap-3 sm:grid-cols-3">
      {fields.map(({ field, label, hint, numeric }) => {
        const id = `${idPrefix}-${field}`;
        const problem = problems[field];
        return (
          <div key={field}>
            <label className="field-label" htmlFor={id}>
              {t(label)}
            </label>
            <input
              id={id}
              className="input"
              inputMode={numeric}
              value={value[field]}
              onChange={(e) => onChange({ ...value, [field]: e.target.value })}
              aria-invalid={problem ? true : undefined}
              aria-describedby={`${id}-hint`}
              autoComplete="off"
            />
            <p id={`${id}-hint`} className={`mt-1 text-xs ${problem ? "text-red-700" : "text-gray-500"}`}>
              {problem ? t(problem.key, { ...problem.vars, field: t(label) }) : t(hint)}
            </p>
          </div>
        );
      })}
    </div>
  );
}

/** A persona picker and the system prompt; picking a persona fills in its prompt when the
 * prompt is still the previous persona's (or empty). */
export function PersonaPromptFields({
  idPrefix,
  personaId,
  prompt,
  onChange,
}: {
  idPrefix: string;
  personaId: bigint | undefined;
  prompt: string;
  onChange: (personaId: bigint | undefined, prompt: string) => void;
}) {
  const t = useT();
  const { personas } = useStore();
  const promptOf = (id: bigint | undefined) => personas.find((p) => p.id === id)?.systemPrompt ?? "";
  return (
    <>
      <div>
        <label className="field-label" htmlFor={`${idPrefix}-persona`}>
          {t("persona")}
        </label>
        <select
          id={`${idPrefix}-persona`}
          className="input"
          value={personaId?.toString() ?? ""}
          onChange={(e) => {
            const next = e.target.value ? BigInt(e.target.value) : undefined;
            const followsPersona = prompt.trim() === "" || prompt === promptOf(personaId);
            onChange(next, followsPersona ? promptOf(next) : prompt);
          }}
        >
          <option value="">{t("noPersona")}</option>
          {personas.map((p) => (
            <option key={p.id.toString()} value={p.id.toString()}>
              {personaText(p, t).name}
            </option>
          ))}
        </select>
      </div>
      <div>
        <div className="flex items-baseline justify-between gap-2">
          <label className="field-label" htmlFor={`${idPrefix}-prompt`}>
            {t("systemPrompt")}
          </label>
          {personaId !== undefined && prompt !== promptOf(personaId) && (
            <button type="button" className="text-xs underline" onClick={() => onChange(personaId, promptOf(personaId))}>
              {t("usePersonaPrompt")}
            </button>
          )}
        </div>
        <textarea
          id={`${idPrefix}-prompt`}
          className="input min-h-28 font-[inherit]"
          value={prompt}
          maxLength={20_000}
          onChange={(e) => onChange(personaId, e.target.value)}
        />
      </div>
    </>
  );
}

/** The header's settings button: the chat's persona, system prompt and sampling, and ending
 * or reopening it. */
export function ChatSettingsButton({ session, onChanged }: { session: Session; onChanged: (s: Session) => void }) {
  const t = useT();
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        type="button"
        className="btn-ghost"
        onClick={() => setOpen(true)}
        aria-label={t("chatSettings")}
        title={t("chatSettings")}
        aria-haspopup="dialog"
        data-testid="chat-settings-button"
      >
        <SlidersIcon />
      </button>
      <Modal open={open} title={t("chatSettings")} onClose={() => setOpen(false)}>
        {open && (
          <ChatSettingsForm
            session={session}
            onSaved={(s) => {
              onChanged(s);
              setOpen(false);
            }}
            onCancel={() => setOpen(false)}
          />
        )}
      </Modal>
    </>
  );
}

function ChatSettingsForm({ session, onSaved, onCancel }: { session: Session; onSaved: (s: Session) => void; onCancel: () => void }) {
  const t = useT();
  const { api } = useStore();
  const stored = { temperature: session.temperature, topP: session.topP, maxTokens: session.maxTokens };
  const [personaId, setPersonaId] = useState(session.personaId);
  const [prompt, setPrompt] = useState(session.systemPrompt);
  const [sampling, setSampling] = useState<SamplingText>(() => samplingText(stored));
  const [showProblems, setShowProblems] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const parsed = parseSampling(sampling);

  const update = async (fields: Parameters<typeof api.sessions.updateSession>[0]) => {
    setBusy(true);
    setError(null);
    try {
      const res = await api.sessions.updateSession(fields);
      if (res.session) onSaved(res.session);
    } catch (err) {
      setError(`${t("couldNotSaveSettings")}: ${describeError(err, t)}`);
    } finally {
      setBusy(false);
    }
  };

  const save = (e: FormEvent) => {
    e.preventDefault();
    setShowProblems(true);
    if (Object.keys(parsed.problems).length > 0) return;
    const paths = changedSamplingPaths(stored, parsed.values);
    if (prompt !== session.systemPrompt) paths.push("system_prompt");
    if (personaId !== session.personaId) paths.push("persona_id");
    if (paths.length === 0) {
      onCancel();
      return;
    }
    void update({
      id: session.id,
      systemPrompt: prompt,
      personaId: personaId ?? 0n,
      temperature: parsed.values.temperature,
      topP: parsed.values.topP,
      maxTokens: parsed.values.maxTokens,
      updateMask: { paths },
    });
  };

  const ended = session.endTime !== undefined;
  return (
    <form onSubmit={save} className="space-y-3" aria-label={t("chatSettings")} data-testid="chat-settings" noValidate>
      <PersonaPromptFields
        idPrefix="chat-settings"
        personaId={personaId}
        prompt={prompt}
        onChange={(nextPersona, nextPrompt) => {
          setPersonaId(nextPersona);
          setPrompt(nextPrompt);
        }}
      />
      <SamplingFields idPrefix="chat-settings" value={sampling} onChange={setSampling} problems={showProblems ? parsed.problems : {}} />
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      <div className="flex flex-wrap items-center justify-end gap-2">
        <button
          type="button"
          className="btn-secondary mr-auto"
          disabled={busy}
          onClick={() => void update({ id: session.id, ended: !ended, updateMask: { paths: ["ended"] } })}
        >
          {ended ? t("reopenChat") : t("endChat")}
        </button>
        <button type="button" className="btn-secondary" onClick={onCancel}>
          {t("cancel")}
        </button>
        <button type="submit" className="btn-primary" disabled={busy}>
          {t("save")}
        </button>
      </div>
    </form>
  );
}
