import { useEffect } from "react";
import { useStore } from "../app/store";
import { useT } from "../i18n";
import type { Persona } from "../gen/parley/chat/v1/persona_pb";
import { EditableList, ResourceCard, ResourceForm } from "../ui/EditableList";
import { personaText } from "../ui/personaText";
import { useLibraryT } from "../library/strings";

function PersonaForm({ persona, onDone }: { persona?: Persona; onDone: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api, reloadPersonas } = useStore();
  const prefix = persona ? `persona-${persona.id}` : "persona-new";

  const save = async (form: FormData) => {
    const fields = {
      name: String(form.get("name")).trim(),
      description: String(form.get("description")).trim(),
      systemPrompt: String(form.get("systemPrompt")),
      avatar: String(form.get("avatar") ?? "").trim(),
    };
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
  };

  return (
    <ResourceForm label={persona ? t("edit") : t("newPersona")} onSave={save} onCancel={onDone}>
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
    </ResourceForm>
  );
}

function PersonaCard({ persona, onEdit }: { persona: Persona; onEdit: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api, reloadPersonas } = useStore();
  return (
    <ResourceCard
      testId="persona"
      editable={!persona.builtIn}
      onEdit={onEdit}
      onDelete={async () => {
        await api.personas.deletePersona({ id: persona.id });
        await reloadPersonas();
      }}
      confirmMessage={`${t("deletePersonaConfirm", { name: persona.name })} ${
        persona.sessionCount > 0 ? lt("personaUsedBy", { count: persona.sessionCount }) : lt("personaUnused")
      }`}
    >
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
    </ResourceCard>
  );
}

export function PersonasPanel() {
  const t = useT();
  const { personas, reloadPersonas } = useStore();
  // Read again on opening: how many chats use each persona changes as chats are made.
  useEffect(() => {
    reloadPersonas().catch(() => {});
  }, [reloadPersonas]);
  return (
    <EditableList
      heading={t("personas")}
      newLabel={t("newPersona")}
      items={personas}
      keyOf={(p) => p.id.toString()}
      renderForm={(persona, close) => <PersonaForm persona={persona} onDone={close} />}
      renderCard={(persona, edit) => <PersonaCard persona={persona} onEdit={edit} />}
    />
  );
}
