import { useState, type ReactNode } from "react";
import { useStore } from "../app/store";
import type { Folder } from "../gen/parley/chat/v1/folder_pb";
import type { Session } from "../gen/parley/chat/v1/session_pb";
import { useT } from "../i18n";
import { Menu } from "../ui/Menu";
import { ConfirmModal, Modal, PromptModal } from "../ui/Modal";
import { DotsIcon, EditIcon, PlusIcon, TrashIcon } from "../ui/icons";
import { useToast } from "../ui/toast";
import { describeError } from "../ui/errorText";
import { useLibraryT } from "./strings";

/** The sidebar's folders, above the date groups: each with its chats (drawn by `renderChat`),
 * a menu to rename or delete it, and a button for a new one. */
export function FolderSections({
  groups,
  renderChat,
}: {
  groups: { folder: Folder; sessions: Session[] }[];
  renderChat: (session: Session) => ReactNode;
}) {
  const lt = useLibraryT();
  const t = useT();
  const { api, reloadFolders } = useStore();
  const toast = useToast();
  const [creating, setCreating] = useState(false);
  const create = async (name: string) => {
    try {
      await api.folders.createFolder({ name });
      await reloadFolders();
    } catch (err) {
      toast(`${lt("couldNotChangeFolders")}: ${describeError(err, t)}`);
    }
  };
  return (
    <section aria-labelledby="chat-folders" data-testid="chat-folders">
      <div className="flex items-center justify-between px-2 pb-1">
        <h3 id="chat-folders" className="text-xs font-semibold text-gray-500">
          {lt("folders")}
        </h3>
        <button
          type="button"
          className="btn-ghost p-1"
          onClick={() => setCreating(true)}
          aria-label={lt("newFolder")}
          title={lt("newFolder")}
        >
          <PlusIcon width={14} height={14} />
        </button>
      </div>
      <ul className="space-y-0.5">
        {groups.map(({ folder, sessions }) => (
          <FolderGroup key={folder.id.toString()} folder={folder} sessions={sessions} renderChat={renderChat} />
        ))}
      </ul>
      <PromptModal
        open={creating}
        title={lt("newFolder")}
        label={lt("folderName")}
        initial=""
        saveLabel={t("save")}
        cancelLabel={t("cancel")}
        onSave={(name) => void create(name)}
        onClose={() => setCreating(false)}
      />
    </section>
  );
}

export function FolderIcon() {
  return (
    <svg
      width="14"
      height="14"
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth="2"
      aria-hidden="true"
      className="shrink-0 text-gray-500"
    >
      <path d="M3 6a1 1 0 0 1 1-1h5l2 2h9a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1z" strokeLinejoin="round" />
    </svg>
  );
}

function FolderGroup({
  folder,
  sessions,
  renderChat,
}: {
  folder: Folder;
  sessions: Session[];
  renderChat: (session: Session) => ReactNode;
}) {
  const lt = useLibraryT();
  const t = useT();
  const { api, reloadFolders, reloadSessions } = useStore();
  const toast = useToast();
  const [open, setOpen] = useState(true);
  const [renaming, setRenaming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const run = async (change: () => Promise<unknown>) => {
    try {
      await change();
      await reloadFolders();
    } catch (err) {
      toast(`${lt("couldNotChangeFolders")}: ${describeError(err, t)}`);
    }
  };
  const listId = `folder-${folder.id}-chats`;
  return (
    <li data-testid="chat-folder">
      <div className="group flex items-center rounded-lg hover:bg-gray-200">
        <button
          type="button"
          className="flex min-w-0 flex-1 items-center gap-1.5 px-2 py-1.5 text-left text-sm font-medium"
          aria-expanded={open}
          aria-controls={listId}
          onClick={() => setOpen(!open)}
        >
          <FolderIcon />
          <span className="truncate">{folder.name}</span>
          <span className="text-xs font-normal text-gray-500">{sessions.length}</span>
        </button>
        <div className="pr-1 opacity-100 md:opacity-0 md:group-focus-within:opacity-100 md:group-hover:opacity-100">
          <Menu
            label={lt("folderOptions", { name: folder.name })}
            align="right"
            buttonClassName="btn-ghost"
            button={<DotsIcon />}
            items={[
              { label: lt("renameFolder"), icon: <EditIcon />, onSelect: () => setRenaming(true) },
              { label: lt("deleteFolder"), icon: <TrashIcon />, danger: true, onSelect: () => setDeleting(true) },
            ]}
          />
        </div>
      </div>
      {open && (
        <ul id={listId} className="ml-3 space-y-0.5 border-l border-gray-300 pl-1">
          {sessions.map(renderChat)}
        </ul>
      )}
      <PromptModal
        open={renaming}
        title={lt("renameFolder")}
        label={lt("folderName")}
        initial={folder.name}
        saveLabel={t("save")}
        cancelLabel={t("cancel")}
        onSave={(name) => void run(() => api.folders.updateFolder({ id: folder.id, name, updateMask: { paths: ["name"] } }))}
        onClose={() => setRenaming(false)}
      />
      <ConfirmModal
        open={deleting}
        title={lt("deleteFolder")}
        message={lt("deleteFolderConfirm", { name: folder.name })}
        confirmLabel={t("delete")}
        cancelLabel={t("cancel")}
        onConfirm={() =>
          void run(async () => {
            await api.folders.deleteFolder({ id: folder.id });
            // Its chats are now in no folder.
            await reloadSessions();
          })
        }
        onClose={() => setDeleting(false)}
      />
    </li>
  );
}

/** Asks which folder a chat goes to (or none); answers the folder id, 0n for none. */
export function MoveToFolderDialog({
  open,
  session,
  onMove,
  onClose,
}: {
  open: boolean;
  session: Session;
  onMove: (folderId: bigint) => void;
  onClose: () => void;
}) {
  const lt = useLibraryT();
  const t = useT();
  const { folders } = useStore();
  return (
    <Modal open={open} title={lt("moveToFolder")} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onMove(BigInt(String(new FormData(e.currentTarget).get("folder") ?? "0")));
          onClose();
        }}
      >
        <label className="field-label" htmlFor={`move-folder-${session.id}`}>
          {lt("folders")}
        </label>
        <select
          id={`move-folder-${session.id}`}
          name="folder"
          className="input"
          defaultValue={(session.folderId ?? 0n).toString()}
          autoFocus
        >
          <option value="0">{lt("noFolder")}</option>
          {folders.map((f) => (
            <option key={f.id.toString()} value={f.id.toString()}>
              {f.name}
            </option>
          ))}
        </select>
        <div className="mt-5 flex justify-end gap-2">
          <button type="button" className="btn-secondary" onClick={onClose}>
            {t("cancel")}
          </button>
          <button type="submit" className="btn-primary">
            {t("save")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
