import type { Session } from "../gen/parley/chat/v1/session_pb";

export type GroupKey = "pinned" | "today" | "yesterday" | "previous7" | "older";

/** Seconds since the epoch when the chat was last active (falls back to its last update). */
function activeAt(s: Session): number {
  return Number(s.lastActiveAt?.seconds ?? s.updatedAt?.seconds ?? s.startTime?.seconds ?? 0n);
}

/** The sidebar's sections, as ChatGPT shows them: pinned, then by the day of last activity
 * in the viewer's time zone. Keeps the order it is given within a section. */
export function groupSessions(sessions: Session[], now: Date): { key: GroupKey; sessions: Session[] }[] {
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime() / 1000;
  const day = 24 * 60 * 60;
  const keyOf = (s: Session): GroupKey => {
    if (s.pinned) return "pinned";
    const at = activeAt(s);
    if (at >= startOfToday) return "today";
    if (at >= startOfToday - day) return "yesterday";
    if (at >= startOfToday - 7 * day) return "previous7";
    return "older";
  };
  const order: GroupKey[] = ["pinned", "today", "yesterday", "previous7", "older"];
  const groups = new Map<GroupKey, Session[]>();
  for (const s of sessions) {
    const key = keyOf(s);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return order.filter((k) => groups.has(k)).map((key) => ({ key, sessions: groups.get(key) ?? [] }));
}
