import { useCallback, useEffect, useLayoutEffect, useRef, useState, type DependencyList } from "react";

const NEAR_BOTTOM_PX = 48;

function nearBottom(el: HTMLElement): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
}

/** Keeps a scrolling list at its newest end unless the reader scrolled up: re-pinned whenever
 * its content or its own height changes (new text, the composer growing, a reasoning block
 * opening, an image loading, the window resizing), not only when `deps` change. */
export function useStickToBottom(deps: DependencyList) {
  const scroller = useRef<HTMLDivElement>(null);
  const content = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  // Where the view was last pinned: a position above it that is not the bottom means the
  // reader moved, even before their scroll event arrived (text comes faster).
  const pinnedAt = useRef<number | null>(null);
  const [showJump, setShowJump] = useState(false);

  const unstick = useCallback(() => {
    stick.current = false;
    setShowJump(true);
  }, []);

  const pin = useCallback(() => {
    const el = scroller.current;
    if (!el || !stick.current) return;
    if (pinnedAt.current !== null && el.scrollTop < pinnedAt.current - 4 && !nearBottom(el)) {
      unstick();
      return;
    }
    el.scrollTop = el.scrollHeight;
    pinnedAt.current = el.scrollTop;
  }, [unstick]);

  // eslint-disable-next-line react-hooks/exhaustive-deps
  useLayoutEffect(pin, deps);

  useEffect(() => {
    const el = scroller.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(() => pin());
    observer.observe(el);
    if (content.current) observer.observe(content.current);
    return () => observer.disconnect();
  }, [pin]);

  const onScroll = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    const atBottom = nearBottom(el);
    stick.current = atBottom;
    if (atBottom) pinnedAt.current = el.scrollTop;
    setShowJump(!atBottom);
  }, []);

  const onWheel = useCallback(
    (e: { deltaY: number }) => {
      const el = scroller.current;
      // Wheeling up over a list too short to scroll moves nothing: the view stays pinned.
      if (el && e.deltaY < 0 && el.scrollHeight > el.clientHeight) unstick();
    },
    [unstick],
  );

  /** The next change pins the view to the bottom (after the user sends or regenerates). */
  const followLatest = useCallback(() => {
    stick.current = true;
    pinnedAt.current = null;
    setShowJump(false);
  }, []);

  const jumpToLatest = useCallback(() => {
    followLatest();
    pin();
  }, [followLatest, pin]);

  return { scroller, content, showJump, onScroll, onWheel, followLatest, jumpToLatest };
}
