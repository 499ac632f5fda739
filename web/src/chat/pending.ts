// The first message of a chat typed on the "new chat" page: the page creates the session,
// then the chat view sends this once it has loaded.
const pending = new Map<string, string>();

export function setPendingMessage(sessionId: string, content: string): void {
  pending.set(sessionId, content);
}

/** The message waiting for this chat, handed out once. */
export function takePendingMessage(sessionId: string): string | undefined {
  const content = pending.get(sessionId);
  pending.delete(sessionId);
  return content;
}
