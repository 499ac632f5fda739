import { useEffect, useId, useLayoutEffect, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import { createPortal } from "react-dom";

export interface MenuItem {
  label: string;
  onSelect: () => void;
  danger?: boolean;
  icon?: ReactNode;
}

const GAP = 4;
const MARGIN = 8;

/** Where a menu of `size` goes next to `anchor` within a `viewport`: on the preferred side
 * when it fits there, else on the side with more room; always inside the viewport. */
export function placeMenu(
  anchor: { top: number; bottom: number; left: number; right: number },
  size: { width: number; height: number },
  viewport: { width: number; height: number },
  align: "left" | "right" | "center",
  placement: "below" | "above",
): { top: number; left: number } {
  const below = viewport.height - anchor.bottom - GAP - MARGIN;
  const above = anchor.top - GAP - MARGIN;
  const fitsPreferred = placement === "below" ? size.height <= below : size.height <= above;
  const side = fitsPreferred ? placement : below >= above ? "below" : "above";
  const top = side === "below" ? anchor.bottom + GAP : anchor.top - GAP - size.height;
  const left =
    align === "right" ? anchor.right - size.width : align === "center" ? (anchor.left + anchor.right - size.width) / 2 : anchor.left;
  const clamp = (value: number, max: number) => Math.max(MARGIN, Math.min(value, max - MARGIN));
  return { top: clamp(top, viewport.height - size.height), left: clamp(left, viewport.width - size.width) };
}

// A button that opens a list of actions; arrow keys, Home and End move, Escape closes and
// returns focus. The list is drawn in a portal at fixed coordinates, so the scrolling chat
// list cannot clip it, and opens upward when there is no room below.
export function Menu({
  label,
  button,
  items,
  buttonClassName,
  align = "left",
  placement = "below",
  menuClassName = "",
  header,
}: {
  label: string;
  button: ReactNode;
  items: MenuItem[];
  buttonClassName?: string;
  align?: "left" | "right" | "center";
  placement?: "below" | "above";
  menuClassName?: string;
  header?: ReactNode;
}) {
  const [open, setOpen] = useState(false);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const listRef = useRef<HTMLDivElement>(null);
  const id = useId();

  useLayoutEffect(() => {
    if (!open) return;
    const place = () => {
      const anchor = buttonRef.current?.getBoundingClientRect();
      const list = listRef.current;
      if (!anchor || !list) return;
      const viewport = { width: document.documentElement.clientWidth, height: window.innerHeight };
      const { top, left } = placeMenu(anchor, { width: list.offsetWidth, height: list.offsetHeight }, viewport, align, placement);
      list.style.top = `${top}px`;
      list.style.left = `${left}px`;
      list.style.visibility = "visible";
    };
    place();
    window.addEventListener("resize", place);
    // Capture: a scroll of any ancestor (the chat list) moves the button.
    window.addEventListener("scroll", place, true);
    return () => {
      window.removeEventListener("resize", place);
      window.removeEventListener("scroll", place, true);
    };
  }, [open, align, placement]);

  useEffect(() => {
    if (!open) return;
    listRef.current?.querySelector<HTMLButtonElement>("[role=menuitem]")?.focus();
    const onDown = (e: MouseEvent) => {
      if (!listRef.current?.contains(e.target as Node) && !buttonRef.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", onDown);
    return () => document.removeEventListener("mousedown", onDown);
  }, [open]);

  const close = () => {
    buttonRef.current?.focus();
    setOpen(false);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const entries = Array.from(listRef.current?.querySelectorAll<HTMLButtonElement>("[role=menuitem]") ?? []);
    const index = entries.indexOf(document.activeElement as HTMLButtonElement);
    const focus = (i: number) => entries[(i + entries.length) % entries.length]?.focus();
    switch (e.key) {
      case "Escape":
        // Only the menu closes, not the drawer or dialog it sits in.
        e.preventDefault();
        e.stopPropagation();
        close();
        break;
      case "ArrowDown":
        e.preventDefault();
        focus(index + 1);
        break;
      case "ArrowUp":
        e.preventDefault();
        focus(index - 1);
        break;
      case "Home":
        e.preventDefault();
        focus(0);
        break;
      case "End":
        e.preventDefault();
        focus(entries.length - 1);
        break;
      case "Tab":
        // Back to the button, from where Tab goes on to the next control.
        close();
        break;
    }
  };

  return (
    <div className="relative">
      <button
        ref={buttonRef}
        type="button"
        aria-label={label}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? id : undefined}
        className={buttonClassName}
        onClick={() => setOpen((o) => !o)}
      >
        {button}
      </button>
      {open &&
        createPortal(
          <div
            ref={listRef}
            id={id}
            role="menu"
            aria-label={label}
            onKeyDown={onKeyDown}
            style={{ position: "fixed", top: 0, left: 0, visibility: "hidden" }}
            className={`z-50 max-h-[calc(100vh-1rem)] min-w-44 overflow-y-auto rounded-lg border border-gray-200 bg-white py-1 text-sm text-gray-900 shadow-lg ${menuClassName}`}
          >
            {header}
            {items.map((item) => (
              <button
                key={item.label}
                type="button"
                role="menuitem"
                className={`flex w-full items-center gap-2 px-3 py-2 text-left hover:bg-gray-100 focus:bg-gray-100 focus:outline-none ${
                  item.danger ? "text-red-600" : ""
                }`}
                onClick={() => {
                  // Focus goes back to the button first, so a dialog the item opens returns it there.
                  close();
                  item.onSelect();
                }}
              >
                {item.icon}
                {item.label}
              </button>
            ))}
          </div>,
          document.body,
        )}
    </div>
  );
}
