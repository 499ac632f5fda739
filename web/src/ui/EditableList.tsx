import { Fragment, useState, type FormEvent, type ReactNode } from "react";
import { useT } from "../i18n";
import { ConfirmModal } from "./Modal";
import { describeError } from "./errorText";

/**
 * The settings lists of things a user writes (personas, saved prompts): a heading with a
 * "new" button, the items as cards, and one item at a time turned into its edit form.
 * The panels say what an item looks like and how it is saved; the list shape lives here once.
 */
export function EditableList<T>({
  heading,
  headingId,
  newLabel,
  items,
  keyOf,
  renderForm,
  renderCard,
  before,
  emptyText,
}: {
  heading: string;
  headingId?: string;
  newLabel: string;
  /** null while loading. */
  items: T[] | null;
  keyOf: (item: T) => string;
  /** The form for a new item (`undefined`) or an existing one; it calls `close` when done or cancelled. */
  renderForm: (item: T | undefined, close: () => void) => ReactNode;
  renderCard: (item: T, edit: () => void) => ReactNode;
  /** Shown under the heading: an introduction, a load error. */
  before?: ReactNode;
  emptyText?: string;
}) {
  const [editing, setEditing] = useState<string | "new" | null>(null);
  const close = () => setEditing(null);
  return (
    <section className="space-y-4" aria-labelledby={headingId}>
      <div className="flex items-center justify-between">
        <h2 id={headingId} className="text-lg font-semibold">
          {heading}
        </h2>
        {editing !== "new" && (
          <button type="button" className="btn-primary" onClick={() => setEditing("new")}>
            {newLabel}
          </button>
        )}
      </div>
      {before}
      {editing === "new" && renderForm(undefined, close)}
      {emptyText && items && items.length === 0 && editing !== "new" && <p className="text-sm text-gray-500">{emptyText}</p>}
      <ul className="space-y-3">
        {items?.map((item) => {
          const key = keyOf(item);
          return editing === key ? (
            <li key={key}>{renderForm(item, close)}</li>
          ) : (
            <Fragment key={key}>{renderCard(item, () => setEditing(key))}</Fragment>
          );
        })}
      </ul>
    </section>
  );
}

/** An edit form's frame: saving state, the error a save answered, Cancel and Save. */
export function ResourceForm({
  label,
  onSave,
  onCancel,
  children,
}: {
  label: string;
  /** Reads the form and saves it; a throw is shown under the fields and keeps the form open. */
  onSave: (form: FormData) => Promise<void>;
  onCancel: () => void;
  children: ReactNode;
}) {
  const t = useT();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await onSave(form);
    } catch (err) {
      setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={save} className="space-y-3 rounded-xl border border-gray-200 bg-gray-50 p-4" aria-label={label}>
      {children}
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

/** A list item's frame: its body, Edit and Delete (asked again before deleting), and the error a delete answered. */
export function ResourceCard({
  testId,
  children,
  editable = true,
  onEdit,
  onDelete,
  confirmMessage,
  actionName,
}: {
  testId: string;
  children: ReactNode;
  editable?: boolean;
  onEdit: () => void;
  onDelete: () => Promise<void>;
  confirmMessage: string;
  /** Names the item in the buttons' accessible names ("Edit: /name"), when the card shows several. */
  actionName?: string;
}) {
  const t = useT();
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const remove = async () => {
    try {
      await onDelete();
    } catch (err) {
      setError(describeError(err, t));
    }
  };
  return (
    <li className="rounded-xl border border-gray-200 p-4" data-testid={testId}>
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0 flex-1">{children}</div>
        {editable && (
          <div className="flex gap-2">
            <button
              type="button"
              className="btn-secondary px-3 py-1.5"
              onClick={onEdit}
              aria-label={actionName ? `${t("edit")}: ${actionName}` : undefined}
            >
              {t("edit")}
            </button>
            <button
              type="button"
              className="btn-secondary px-3 py-1.5 text-red-600"
              onClick={() => setDeleting(true)}
              aria-label={actionName ? `${t("delete")}: ${actionName}` : undefined}
            >
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
        message={confirmMessage}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() => void remove()}
        onClose={() => setDeleting(false)}
      />
    </li>
  );
}
