import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useStore } from "../app/store";
import type { Prompt } from "../gen/parley/chat/v1/prompt_pb";
import { useT } from "../i18n";
import { ConfirmModal } from "../ui/Modal";
import { describeError } from "../ui/errorText";
import { useLibraryT } from "./strings";

/** Settings → Prompts: the user's saved prompts, to add, edit and delete. */
export default function PromptsPanel() {
  const t = useT();
  const lt = useLibraryT();
  const { api } = useStore();
  const [prompts, setPrompts] = useState<Prompt[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | "new" | null>(null);

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
    <section className="space-y-4" aria-labelledby="prompts-heading">
      <div className="flex items-center justify-between">
        <h2 id="prompts-heading" className="text-lg font-semibold">
          {lt("prompts")}
        </h2>
        {editing !== "new" && (
          <button type="button" className="btn-primary" onClick={() => setEditing("new")}>
            {lt("newPrompt")}
          </button>
        )}
      </div>
      <p className="text-sm text-gray-600">{lt("promptsIntro")}</p>
      {loadError && (
        <div role="alert" className="alert-error">
          {lt("couldNotLoadPrompts")}: {loadError}
          <button type="button" className="ml-2 font-medium underline" onClick={() => void reload()}>
            {t("retry")}
          </button>
        </div>
      )}
      {editing === "new" && (
        <PromptForm
          onDone={() => {
            setEditing(null);
            void reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      {prompts && prompts.length === 0 && editing !== "new" && <p className="text-sm text-gray-500">{lt("noPrompts")}</p>}
      <ul className="space-y-3">
        {prompts?.map((p) =>
          editing === p.id.toString() ? (
            <li key={p.id.toString()}>
              <PromptForm
                prompt={p}
                onDone={() => {
                  setEditing(null);
                  void reload();
                }}
                onCancel={() => setEditing(null)}
              />
            </li>
          ) : (
            <PromptCard key={p.id.toString()} prompt={p} onEdit={() => setEditing(p.id.toString())} onDeleted={() => void reload()} />
          ),
        )}
      </ul>
    </section>
  );
}

function PromptForm({ prompt, onDone, onCancel }: { prompt?: Prompt; onDone: () => void; onCancel: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api } = useStore();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const prefix = prompt ? `prompt-${prompt.id}` : "prompt-new";

  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const fields = {
      title: String(form.get("title")).trim(),
      command: String(form.get("command")).trim().replace(/^\//, ""),
      body: String(form.get("body")),
    };
    setBusy(true);
    setError(null);
    try {
      if (prompt) await api.prompts.updatePrompt({ id: prompt.id, ...fields, updateMask: { paths: ["title", "command", "body"] } });
      else await api.prompts.createPrompt(fields);
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
      aria-label={prompt ? lt("editPrompt") : lt("newPrompt")}
    >
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
      {error && (
        <p role="alert" className="alert-error">
          {error}
        </p>
      )}
      <div className="flex justify-end gap-2">
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

function PromptCard({ prompt, onEdit, onDeleted }: { prompt: Prompt; onEdit: () => void; onDeleted: () => void }) {
  const t = useT();
  const lt = useLibraryT();
  const { api } = useStore();
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const remove = async () => {
    try {
      await api.prompts.deletePrompt({ id: prompt.id });
      onDeleted();
    } catch (err) {
      setError(describeError(err, t));
    }
  };
  return (
    <li className="rounded-xl border border-gray-200 p-4" data-testid="saved-prompt">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0 flex-1">
          <h3 className="font-medium">
            <span className="mr-2 font-mono text-sm text-gray-600">/{prompt.command}</span>
            {prompt.title}
          </h3>
          <p className="mt-1 line-clamp-3 whitespace-pre-wrap text-sm text-gray-600">{prompt.body}</p>
          {prompt.variables.length > 0 && (
            <p className="mt-1 text-xs text-gray-500">{lt("promptVariables", { names: prompt.variables.join(", ") })}</p>
          )}
        </div>
        <div className="flex gap-2">
          <button type="button" className="btn-secondary px-3 py-1.5" onClick={onEdit} aria-label={`${t("edit")}: /${prompt.command}`}>
            {t("edit")}
          </button>
          <button
            type="button"
            className="btn-secondary px-3 py-1.5 text-red-600"
            onClick={() => setDeleting(true)}
            aria-label={`${t("delete")}: /${prompt.command}`}
          >
            {t("delete")}
          </button>
        </div>
      </div>
      {error && (
        <p role="alert" className="alert-error mt-2">
          {error}
        </p>
      )}
      <ConfirmModal
        open={deleting}
        title={t("delete")}
        message={lt("deletePromptConfirm", { title: prompt.title })}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => void remove()}
        onClose={() => setDeleting(false)}
      />
    </li>
  );
}
