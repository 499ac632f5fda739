import { useT } from "../i18n";

/** "‹ 2 / 3 ›" under a message with versions: an answer regenerated, or a question edited.
 * Switching shows that version and the conversation that followed it (the server keeps which
 * one is shown, so it survives a reload). */
export function VersionSwitcher({
  ids,
  currentId,
  disabled,
  onSwitch,
}: {
  /** The versions, oldest first, `currentId` among them. */
  ids: string[];
  currentId: string;
  disabled: boolean;
  onSwitch: (id: string) => void;
}) {
  const t = useT();
  const index = ids.indexOf(currentId);
  if (ids.length < 2 || index < 0) return null;
  const label = t("versionCount", { n: index + 1, total: ids.length });
  return (
    <div role="group" aria-label={t("versions")} data-testid="version-switcher" className="flex items-center text-xs text-gray-500">
      <button
        type="button"
        className="btn-ghost px-1.5 py-0.5 disabled:opacity-40"
        disabled={disabled || index === 0}
        onClick={() => onSwitch(ids[index - 1])}
        aria-label={t("previousVersion")}
        title={t("previousVersion")}
      >
        <span aria-hidden="true">‹</span>
      </button>
      <span className="min-w-[2.5rem] text-center tabular-nums" aria-label={label} data-testid="version-position">
        {index + 1} / {ids.length}
      </span>
      <button
        type="button"
        className="btn-ghost px-1.5 py-0.5 disabled:opacity-40"
        disabled={disabled || index === ids.length - 1}
        onClick={() => onSwitch(ids[index + 1])}
        aria-label={t("nextVersion")}
        title={t("nextVersion")}
      >
        <span aria-hidden="true">›</span>
      </button>
    </div>
  );
}
