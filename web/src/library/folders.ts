import type { Folder } from "../gen/parley/chat/v1/folder_pb";
import type { Session } from "../gen/parley/chat/v1/session_pb";

/** The sidebar's folders with their chats (every folder, even empty, in the order given), and
 * the chats in no folder the list knows (those go to the date groups). Keeps the chats' order. */
export function splitByFolder(
  sessions: Session[],
  folders: Folder[],
): { folders: { folder: Folder; sessions: Session[] }[]; rest: Session[] } {
  const byId = new Map(folders.map((f) => [f.id, [] as Session[]]));
  const rest: Session[] = [];
  for (const s of sessions) {
    const list = s.folderId === undefined ? undefined : byId.get(s.folderId);
    if (list) list.push(s);
    else rest.push(s);
  }
  return { folders: folders.map((folder) => ({ folder, sessions: byId.get(folder.id) ?? [] })), rest };
}
