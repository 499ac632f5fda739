import { afterEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, renderHook } from "@testing-library/react";
import { useCountdown } from "./useCountdown";

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe("useCountdown", () => {
  it("counts whole seconds down to 0, starts again for a new deadline, and is 0 with none", () => {
    vi.useFakeTimers();
    const { result, rerender } = renderHook(({ until }: { until: number | null }) => useCountdown(until), {
      initialProps: { until: Date.now() + 2500 } as { until: number | null },
    });
    expect(result.current).toBe(3);
    act(() => vi.advanceTimersByTime(1000));
    expect(result.current).toBe(2);
    act(() => vi.advanceTimersByTime(2000));
    expect(result.current).toBe(0);

    rerender({ until: Date.now() + 10_000 });
    expect(result.current).toBe(10);
    act(() => vi.advanceTimersByTime(4000));
    expect(result.current).toBe(6);

    rerender({ until: null });
    expect(result.current).toBe(0);
  });
});
