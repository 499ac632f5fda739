import { useEffect, useLayoutEffect, useRef, useState, type AriaAttributes, type KeyboardEvent, type ReactNode } from "react";
import { useT } from "../i18n";
import { SendIcon, StopIcon } from "../ui/icons";

const MAX_HEIGHT = 240;

/** Focusing the box by itself suits a mouse or trackpad; on a touch screen it would pop the
 * keyboard up over the chat on every chat switch. */
function prefersAutoFocus(): boolean {
  return typeof window !== "undefined" && typeof window.matchMedia === "function" && window.matchMedia("(pointer: fine)").matches;
}

/** The grey input area: a textarea that grows with its text, and Send (or Stop while streaming). */
export function Composer({
  value,
  onChange,
  onSend,
  onStop,
  stopping = false,
  streaming,
  disabled,
  readOnly,
  placeholder,
  autoFocus,
  onKeyDownFirst,
  suggestions,
  inputAria,
}: {
  value: string;
  /** The new text, and where the caret is in it. */
  onChange: (value: string, caret: number) => void;
  onSend: () => void;
  onStop?: () => void;
  /** Stop was pressed and is on its way. */
  stopping?: boolean;
  streaming: boolean;
  disabled?: boolean;
  /** The chat takes no messages (it was ended): the box shows why and takes no text. */
  readOnly?: boolean;
  placeholder: string;
  autoFocus?: boolean;
  /** Sees each key first (an open suggestion list takes arrows, Enter, Tab, Escape); true: handled. */
  onKeyDownFirst?: (e: KeyboardEvent<HTMLTextAreaElement>) => boolean;
  /** Shown above the box (a suggestion list). */
  suggestions?: ReactNode;
  /** ARIA attributes of the box (a combobox with suggestions). */
  inputAria?: AriaAttributes & { role?: string };
}) {
  const t = useT();
  const ref = useRef<HTMLTextAreaElement>(null);
  // Once the box can take text (a chat is disabled while it loads), it takes focus, unless the
  // user is typing somewhere else or a dialog or menu is open.
  const [wantsFocus] = useState(() => !!autoFocus && prefersAutoFocus());
  const focused = useRef(false);
  useEffect(() => {
    if (!wantsFocus || disabled || focused.current) return;
    focused.current = true;
    const active = document.activeElement;
    const busyElsewhere =
      active instanceof HTMLInputElement ||
      active instanceof HTMLTextAreaElement ||
      active instanceof HTMLSelectElement ||
      active?.closest("dialog, [role=dialog], [role=menu]");
    if (!busyElsewhere) ref.current?.focus();
  }, [wantsFocus, disabled]);

  useLayoutEffect(() => {
    const area = ref.current;
    if (!area) return;
    area.style.height = "auto";
    area.style.height = `${Math.min(area.scrollHeight, MAX_HEIGHT)}px`;
    area.style.overflowY = area.scrollHeight > MAX_HEIGHT ? "auto" : "hidden";
  }, [value]);

  const canSend = !streaming && !disabled && value.trim().length > 0;

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (onKeyDownFirst?.(e)) return;
    // Enter sends; Shift+Enter is a newline; Enter that confirms an IME composition (Chinese
    // input) is the IME's.
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      if (canSend) onSend();
    }
  };

  return (
    <div className="relative border-t border-gray-200 bg-gray-100 px-3 pt-3 pb-2 sm:px-6" data-testid="composer">
      {suggestions}
      <form
        className="mx-auto flex max-w-3xl items-end gap-2 rounded-2xl border border-gray-300 bg-white p-2 shadow-xs focus-within:border-gray-500"
        onSubmit={(e) => {
          e.preventDefault();
          if (canSend) onSend();
        }}
      >
        <label htmlFor="composer" className="sr-only">
          {placeholder}
        </label>
        <textarea
          id="composer"
          ref={ref}
          rows={1}
          value={value}
          onChange={(e) => onChange(e.target.value, e.target.selectionStart)}
          onKeyDown={onKeyDown}
          {...inputAria}
          placeholder={placeholder}
          readOnly={readOnly}
          maxLength={100_000}
          className="max-h-60 min-h-[2.5rem] flex-1 resize-none bg-transparent px-2 py-2 text-[15px] leading-6 outline-none placeholder:text-gray-400"
        />
        {streaming && onStop ? (
          <button
            type="button"
            onClick={onStop}
            disabled={stopping}
            className="flex h-10 shrink-0 items-center gap-1.5 rounded-xl bg-gray-900 px-3 text-sm font-medium text-white hover:bg-gray-700 disabled:cursor-wait disabled:opacity-60"
          >
            <StopIcon />
            {stopping ? t("stopping") : t("stop")}
          </button>
        ) : (
          <button
            type="submit"
            disabled={!canSend}
            className="flex h-10 shrink-0 items-center gap-1.5 rounded-xl bg-gray-900 px-3 text-sm font-medium text-white hover:bg-gray-700 disabled:cursor-not-allowed disabled:bg-gray-300"
          >
            <SendIcon />
            {t("send")}
          </button>
        )}
      </form>
      <p className="mx-auto mt-1.5 hidden max-w-3xl text-center text-xs text-gray-500 sm:block">{t("inputHint")}</p>
    </div>
  );
}
