import { Modal } from "../ui/Modal";
import { useT, type MessageKey } from "../i18n";

/** Ctrl on Windows and Linux, ⌘ on Apple keyboards. */
function commandKey(): string {
  const platform = typeof navigator === "undefined" ? "" : navigator.platform || navigator.userAgent;
  return /mac|iphone|ipad/i.test(platform) ? "⌘" : "Ctrl";
}

/** Every keyboard shortcut of the app, as the keys to press; the handlers live in Composer
 * (Enter), ChatView (stop, regenerate, message box) and Shell (the rest). */
export function shortcutList(command: string): { keys: string[]; action: MessageKey }[] {
  return [
    { keys: ["Enter"], action: "shortcutSend" },
    { keys: ["Shift", "Enter"], action: "shortcutNewline" },
    { keys: ["Esc"], action: "shortcutStop" },
    { keys: ["Alt", "Shift", "R"], action: "shortcutRegenerate" },
    { keys: ["Shift", "Esc"], action: "shortcutFocusComposer" },
    { keys: [command, "Shift", "O"], action: "newChat" },
    { keys: ["Alt", "Shift", "S"], action: "shortcutToggleSidebar" },
    { keys: ["?"], action: "shortcutHelp" },
  ];
}

export function ShortcutsDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const t = useT();
  return (
    <Modal open={open} title={t("keyboardShortcuts")} onClose={onClose}>
      <dl className="grid grid-cols-[1fr_auto] gap-x-4 gap-y-2 text-sm" data-testid="shortcuts">
        {shortcutList(commandKey()).map(({ keys, action }) => (
          <div key={action} className="contents">
            <dt className="text-gray-700">{t(action)}</dt>
            <dd className="flex justify-end gap-1">
              {keys.map((key) => (
                <kbd key={key} className="rounded border border-gray-300 bg-gray-50 px-1.5 py-0.5 font-mono text-xs text-gray-800">
                  {key}
                </kbd>
              ))}
            </dd>
          </div>
        ))}
      </dl>
      <div className="mt-5 flex justify-end">
        <button type="button" className="btn-secondary" onClick={onClose}>
          {t("close")}
        </button>
      </div>
    </Modal>
  );
}
