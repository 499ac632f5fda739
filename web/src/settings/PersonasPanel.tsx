import { useEffect, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import { useT } from "../i18n";
import type { Persona } from "../gen/parley/chat/v1/persona_pb";
import { ConfirmModal } from "../ui/Modal";
import { describeError } from "../ui/errorText";
import { personaText } from "../ui/personaText";
import { useLibraryT } from "../library/strings";

function PersonaForm({ persona, onDone }: { persona?: Persona; onDone: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api, reloadPersonas } = useStore();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const prefix = persona ? `persona-${persona.id}` : "persona-new";

  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const fields = {
      name: String(form.get("name")).trim(),
      description: String(form.get("description")).trim(),
      systemPrompt: String(form.get("systemPrompt")),
      avatar: String(form.get("avatar") ?? "").trim(),
    };
    setBusy(true);
    setError(null);
    try {
      if (persona) {
        await api.personas.updatePersona({
          id: persona.id,
          ...fields,
          updateMask: { paths: ["name", "description", "system_prompt", "avatar"] },
        });
      } else {
        await api.personas.createPersona(fields);
      }
      await reloadPersonas();
      onDone();
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      onSubmit={save}
      className="space-y-3 rounded-xl border border-gray-200 bg-gray-50 p-4"
      aria-label={persona ? t("edit") : t("newPersona")}
    >
      <div>
        <label className="field-label" htmlFor={`${prefix}-name`}>
          {t("name")}
        </label>
        <input id={`${prefix}-name`} name="name" className="input" defaultValue={persona?.name} required maxLength={100} />
      </div>
      <div>
        <label className="field-label" htmlFor={`${prefix}-avatar`}>
          {lt("avatar")}
        </label>
        <input
          id={`${prefix}-avatar`}
          name="avatar"
          className="input w-24"
          defaultValue={persona?.avatar}
          maxLength={16}
          aria-describedby={`${prefix}-avatar-hint`}
        />
        <p id={`${prefix}-avatar-hint`} className="mt-1 text-xs text-gray-500">
          {lt("avatarHint")}
        </p>
      </div>
      <div>
        <label className="field-label" htmlFor={`${prefix}-description`}>
          {t("description")}
        </label>
        <input id={`${prefix}-description`} name="description" className="input" defaultValue={persona?.description} maxLength={500} />
      </div>
      <div>
        <label className="field-label" htmlFor={`${prefix}-prompt`}>
          {t("systemPrompt")}
        </label>
        <textarea
          id={`${prefix}-prompt`}
          name="systemPrompt"
          className="input min-h-32"
          defaultValue={persona?.systemPrompt}
          maxLength={20000}
        />
      </div>
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      <div className="flex justify-end gap-2">
        <button type="button" className="btn-secondary" onClick={onDone}>
          {t("cancel")}
        </button>
        <button type="submit" className="btn-primary" disabled={busy}>
          {t("save")}
        </button>
      </div>
    </form>
  );
}

function PersonaCard({ persona, onEdit }: { persona: Persona; onEdit: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api, reloadPersonas } = useStore();
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const remove = async () => {
    try {
      await api.personas.deletePersona({ id: persona.id });
      await reloadPersonas();
    } catch (err) {
      setError(describeError(err, t));
    }
  };
  return (
    <li className="rounded-xl border border-gray-200 p-4" data-testid="persona">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0 flex-1">
          <h3 className="flex items-center gap-2 font-medium">
            {persona.avatar && <span aria-hidden="true">{persona.avatar}</span>}
            {personaText(persona, t).name}
            {persona.builtIn && <span className="rounded bg-gray-200 px-1.5 py-0.5 text-[11px] text-gray-700">{t("builtIn")}</span>}
            {persona.sessionCount > 0 && (
              <span className="text-xs font-normal text-gray-500" data-testid="persona-usage">
                {lt("usedByChats", { count: persona.sessionCount })}
              </span>
            )}
          </h3>
          {persona.description && <p className="mt-0.5 text-sm text-gray-600">{personaText(persona, t).description}</p>}
          <details className="mt-1 text-sm text-gray-500">
            <summary className="cursor-pointer">{t("systemPrompt")}</summary>
            <p className="mt-1 whitespace-pre-wrap">{persona.systemPrompt}</p>
          </details>
        </div>
        {!persona.builtIn && (
          <div className="flex gap-2">
            <button type="button" className="btn-secondary px-3 py-1.5" onClick={onEdit}>
              {t("edit")}
            </button>
            <button type="button" className="btn-secondary px-3 py-1.5 text-red-600" onClick={() => setDeleting(true)}>
              {t("delete")}
            </button>
          </div>
        )}
      </div>
      {error && (
        <p role="alert" className="alert-error mt-2">
          {error}
        </p>
      )}
      <ConfirmModal
        open={deleting}
        title={t("delete")}
        message={`${t("deletePersonaConfirm", { name: persona.name })} ${
          persona.sessionCount > 0 ? lt("personaUsedBy", { count: persona.sessionCount }) : lt("personaUnused")
        }`}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => void remove()}
        onClose={() => setDeleting(false)}
      />
    </li>
  );
}

export function PersonasPanel() {
  const t = useT();
  const { personas, reloadPersonas } = useStore();
  // Read again on opening: how many chats use each persona changes as chats are made.
  useEffect(() => {
    reloadPersonas().catch(() => {});
  }, [reloadPersonas]);
  const [editing, setEditing] = useState<string | "new" | null>(null);
  return (
    <section className="space-y-4">
      <div className="flex items-center justify-between">
        <h2 className="text-lg font-semibold">{t("personas")}</h2>
        {editing !== "new" && (
          <button type="button" className="btn-primary" onClick={() => setEditing("new")}>
            {t("newPersona")}
          </button>
        )}
      </div>
      {editing === "new" && <PersonaForm onDone={() => setEditing(null)} />}
      <ul className="space-y-3">
        {personas.map((p) =>
          editing === p.id.toString() ? (
            <li key={p.id.toString()}>
              <PersonaForm persona={p} onDone={() => setEditing(null)} />
            </li>
          ) : (
            <PersonaCard key={p.id.toString()} persona={p} onEdit={() => setEditing(p.id.toString())} />
          ),
        )}
      </ul>
    </section>
  );
}
