import { useCallback, useEffect, useState } from "react";
import { useStore } from "../app/store";
import type { Prompt } from "../gen/parley/chat/v1/prompt_pb";
import { useT } from "../i18n";
import { EditableList, ResourceCard, ResourceForm } from "../ui/EditableList";
import { describeError } from "../ui/errorText";
import { useLibraryT } from "./strings";

/** Settings → Prompts: the user's saved prompts, to add, edit and delete. */
export default function PromptsPanel() {
  const t = useT();
  const lt = useLibraryT();
  const { api } = useStore();
  const [prompts, setPrompts] = useState<Prompt[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      const res = await api.prompts.listPrompts({});
      setPrompts(res.prompts);
      setLoadError(null);
    } catch (err) {
      setLoadError(describeError(err, t));
    }
  }, [api, t]);
  useEffect(() => {
    void reload();
  }, [reload]);

  return (
    <EditableList
      heading={lt("prompts")}
      headingId="prompts-heading"
      newLabel={lt("newPrompt")}
      items={prompts}
      keyOf={(p) => p.id.toString()}
      emptyText={lt("noPrompts")}
      before={
        <>
          <p className="text-sm text-gray-600">{lt("promptsIntro")}</p>
          {loadError && (
            <div role="alert" className="alert-error">
              {lt("couldNotLoadPrompts")}: {loadError}
              <button type="button" className="ml-2 font-medium underline" onClick={() => void reload()}>
                {t("retry")}
              </button>
            </div>
          )}
        </>
      }
      renderForm={(prompt, close) => (
        <PromptForm
          prompt={prompt}
          onDone={() => {
            close();
            void reload();
          }}
          onCancel={close}
        />
      )}
      renderCard={(prompt, edit) => <PromptCard prompt={prompt} onEdit={edit} onDeleted={() => void reload()} />}
    />
  );
}

function PromptForm({ prompt, onDone, onCancel }: { prompt?: Prompt; onDone: () => void; onCancel: () => void }) {
  const lt = useLibraryT();
  const { api } = useStore();
  const prefix = prompt ? `prompt-${prompt.id}` : "prompt-new";

  const save = async (form: FormData) => {
    const fields = {
      title: String(form.get("title")).trim(),
      command: String(form.get("command")).trim().replace(/^\//, ""),
      body: String(form.get("body")),
    };
    if (prompt) await api.prompts.updatePrompt({ id: prompt.id, ...fields, updateMask: { paths: ["title", "command", "body"] } });
    else await api.prompts.createPrompt(fields);
    onDone();
  };

  return (
    <ResourceForm label={prompt ? lt("editPrompt") : lt("newPrompt")} onSave={save} onCancel={onCancel}>
      <div>
        <label className="field-label" htmlFor={`${prefix}-title`}>
          {lt("promptTitle")}
        </label>
        <input id={`${prefix}-title`} name="title" className="input" defaultValue={prompt?.title} required maxLength={100} />
      </div>
      <div>
        <label className="field-label" htmlFor={`${prefix}-command`}>
          {lt("promptCommand")}
        </label>
        <div className="flex items-center gap-1">
          <span aria-hidden="true" className="text-gray-500">
            /
          </span>
          <input
            id={`${prefix}-command`}
            name="command"
            className="input"
            defaultValue={prompt?.command}
            required
            maxLength={32}
            pattern="[a-z0-9][a-z0-9_\-]*"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            aria-describedby={`${prefix}-command-hint`}
          />
        </div>
        <p id={`${prefix}-command-hint`} className="mt-1 text-xs text-gray-500">
          {lt("promptCommandHint")}
        </p>
      </div>
      <div>
        <label className="field-label" htmlFor={`${prefix}-body`}>
          {lt("promptBody")}
        </label>
        <textarea id={`${prefix}-body`} name="body" className="input min-h-32" defaultValue={prompt?.body} required />
      </div>
    </ResourceForm>
  );
}

function PromptCard({ prompt, onEdit, onDeleted }: { prompt: Prompt; onEdit: () => void; onDeleted: () => void }) {
  const lt = useLibraryT();
  const { api } = useStore();
  return (
    <ResourceCard
      testId="saved-prompt"
      actionName={`/${prompt.command}`}
      onEdit={onEdit}
      onDelete={async () => {
        await api.prompts.deletePrompt({ id: prompt.id });
        onDeleted();
      }}
      confirmMessage={lt("deletePromptConfirm", { title: prompt.title })}
    >
      <h3 className="font-medium">
        <span className="mr-2 font-mono text-sm text-gray-600">/{prompt.command}</span>
        {prompt.title}
      </h3>
      <p className="mt-1 line-clamp-3 whitespace-pre-wrap text-sm text-gray-600">{prompt.body}</p>
      {prompt.variables.length > 0 && (
        <p className="mt-1 text-xs text-gray-500">{lt("promptVariables", { names: prompt.variables.join(", ") })}</p>
      )}
    </ResourceCard>
  );
}
