import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { useT } from "../i18n";
import { CloseIcon } from "./icons";

// Notices of failed actions whose own control has no room to say so (a chat's menu, the
// model switcher, signing out): announced politely, dismissible, and gone after a while
// unless the pointer or focus is on them.

interface Toast {
  id: number;
  message: string;
}

/** How long a notice stays, unless hovered or focused. */
export const TOAST_MS = 6000;
const MAX_TOASTS = 3;

const ToastContext = createContext<(message: string) => void>(() => {});

/** Shows a notice of something that went wrong: `toast(message)`. */
export function useToast() {
  return useContext(ToastContext);
}

export function ToastProvider({ children }: { children: ReactNode }) {
  const t = useT();
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);
  const show = useCallback((message: string) => {
    const id = nextId.current++;
    setToasts((list) => [...list.filter((x) => x.message !== message).slice(-(MAX_TOASTS - 1)), { id, message }]);
  }, []);
  const dismiss = useCallback((id: number) => setToasts((list) => list.filter((x) => x.id !== id)), []);

  return (
    <ToastContext.Provider value={show}>
      {children}
      <section
        aria-label={t("notifications")}
        className="pointer-events-none fixed inset-x-0 top-3 z-[60] flex flex-col items-center gap-2 px-3"
      >
        <ol aria-live="polite" className="flex w-full max-w-md flex-col gap-2">
          {toasts.map((toast) => (
            <ToastItem key={toast.id} toast={toast} onDismiss={dismiss} />
          ))}
        </ol>
      </section>
    </ToastContext.Provider>
  );
}

function ToastItem({ toast, onDismiss }: { toast: Toast; onDismiss: (id: number) => void }) {
  const t = useT();
  const [held, setHeld] = useState(false);
  useEffect(() => {
    if (held) return;
    const timer = window.setTimeout(() => onDismiss(toast.id), TOAST_MS);
    return () => window.clearTimeout(timer);
  }, [held, toast.id, onDismiss]);
  return (
    <li
      data-testid="toast"
      onMouseEnter={() => setHeld(true)}
      onMouseLeave={() => setHeld(false)}
      onFocus={() => setHeld(true)}
      onBlur={() => setHeld(false)}
      className="pointer-events-auto flex items-start gap-3 rounded-lg border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 shadow-lg"
    >
      <span className="min-w-0 flex-1 break-words">{toast.message}</span>
      <button
        type="button"
        className="shrink-0 rounded p-0.5 hover:bg-black/5"
        onClick={() => onDismiss(toast.id)}
        aria-label={t("dismiss")}
      >
        <CloseIcon width={16} height={16} />
      </button>
    </li>
  );
}
