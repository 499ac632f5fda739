import { afterEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { TOAST_MS, ToastProvider, useToast } from "./toast";

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

function Trigger({ message }: { message: string }) {
  const toast = useToast();
  return (
    <button type="button" onClick={() => toast(message)}>
      fail
    </button>
  );
}

describe("toasts", () => {
  it("announces a notice politely, hides it after a while, and lets it be dismissed", () => {
    vi.useFakeTimers();
    render(
      <ToastProvider>
        <Trigger message="Could not change the chat: unavailable" />
      </ToastProvider>,
    );
    const region = screen.getByRole("region", { name: "Notifications" });
    expect(region.querySelector("[aria-live=polite]")).not.toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "fail" }));
    expect(region.textContent).toContain("Could not change the chat: unavailable");

    act(() => vi.advanceTimersByTime(TOAST_MS - 1));
    expect(screen.queryAllByTestId("toast")).toHaveLength(1);
    act(() => vi.advanceTimersByTime(1));
    expect(screen.queryAllByTestId("toast")).toHaveLength(0);

    fireEvent.click(screen.getByRole("button", { name: "fail" }));
    fireEvent.click(screen.getByRole("button", { name: "Dismiss" }));
    expect(screen.queryAllByTestId("toast")).toHaveLength(0);
  });

  it("stays while the pointer is on it, and shows one notice per message", () => {
    vi.useFakeTimers();
    render(
      <ToastProvider>
        <Trigger message="offline" />
      </ToastProvider>,
    );
    fireEvent.click(screen.getByRole("button", { name: "fail" }));
    fireEvent.click(screen.getByRole("button", { name: "fail" }));
    expect(screen.getAllByTestId("toast")).toHaveLength(1);
    fireEvent.mouseEnter(screen.getByTestId("toast"));
    act(() => vi.advanceTimersByTime(TOAST_MS * 3));
    expect(screen.getAllByTestId("toast")).toHaveLength(1);
    fireEvent.mouseLeave(screen.getByTestId("toast"));
    act(() => vi.advanceTimersByTime(TOAST_MS));
    expect(screen.queryAllByTestId("toast")).toHaveLength(0);
  });
});
