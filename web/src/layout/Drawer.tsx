import { useEffect, useRef, type KeyboardEvent, type ReactNode } from "react";

const focusableSelector =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function focusables(root: HTMLElement): HTMLElement[] {
  return Array.from(root.querySelectorAll<HTMLElement>(focusableSelector)).filter((el) => el.checkVisibility?.() ?? true);
}

/** The phone drawer: a modal dialog over the page (which is inert meanwhile). Focus moves in
 * when it opens, Tab stays inside, and closing returns focus to the "Open sidebar" button. */
export function Drawer({ label, onClose, children }: { label: string; onClose: () => void; children: ReactNode }) {
  const panel = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const root = panel.current;
    if (root) (root.querySelector<HTMLElement>("[data-drawer-initial-focus]") ?? focusables(root)[0] ?? root).focus();
    return () => {
      // The view may have changed underneath (a chat was picked): its own toggle button.
      document.querySelector<HTMLElement>("[data-sidebar-toggle]")?.focus();
    };
  }, []);

  const onKeyDown = (e: KeyboardEvent) => {
    // A menu or dialog inside the drawer handles its own Escape and stops it there.
    if (e.key === "Escape") {
      e.preventDefault();
      onClose();
      return;
    }
    if (e.key !== "Tab" || !panel.current) return;
    const items = focusables(panel.current);
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    const inside = panel.current.contains(document.activeElement);
    if (e.shiftKey && (document.activeElement === first || !inside)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (document.activeElement === last || !inside)) {
      e.preventDefault();
      first.focus();
    }
  };

  return (
    <div className="fixed inset-0 z-40 md:hidden" role="dialog" aria-modal="true" aria-label={label} onKeyDown={onKeyDown}>
      <div className="absolute inset-0 bg-black/40" onClick={onClose} aria-hidden="true" />
      <div ref={panel} tabIndex={-1} className="absolute inset-y-0 left-0 flex w-[85vw] max-w-xs shadow-xl outline-none">
        {children}
      </div>
    </div>
  );
}
