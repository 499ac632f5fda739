import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { Menu, placeMenu } from "./Menu";
import { Drawer } from "../layout/Drawer";

afterEach(cleanup);

describe("placeMenu", () => {
  const viewport = { width: 400, height: 800 };
  const size = { width: 180, height: 200 };

  it("opens below the button when there is room", () => {
    expect(placeMenu({ top: 100, bottom: 130, left: 50, right: 80 }, size, viewport, "left", "below")).toEqual({ top: 134, left: 50 });
  });

  it("flips upward near the bottom of the screen", () => {
    expect(placeMenu({ top: 700, bottom: 730, left: 50, right: 80 }, size, viewport, "left", "below")).toEqual({ top: 496, left: 50 });
  });

  it("aligns to the button's right edge and stays inside the viewport", () => {
    expect(placeMenu({ top: 100, bottom: 130, left: 300, right: 330 }, size, viewport, "right", "below").left).toBe(150);
    expect(placeMenu({ top: 100, bottom: 130, left: 350, right: 390 }, size, viewport, "left", "below").left).toBe(212);
    expect(placeMenu({ top: 10, bottom: 40, left: 0, right: 20 }, size, viewport, "center", "above")).toEqual({ top: 44, left: 8 });
  });
});

function items(onSelect: (label: string) => void = () => {}) {
  return ["Rename", "Pin", "Archive", "Delete"].map((label) => ({ label, onSelect: () => onSelect(label) }));
}

describe("Menu", () => {
  it("is drawn outside any clipping container, moves with Home and End, and Escape closes only it", () => {
    const outer = vi.fn();
    render(
      <div onKeyDown={outer} style={{ overflow: "hidden" }} data-testid="clip">
        <Menu label="Chat options" button="…" items={items()} />
      </div>,
    );
    fireEvent.click(screen.getByRole("button", { name: "Chat options" }));
    const menu = screen.getByRole("menu");
    expect(screen.getByTestId("clip").contains(menu)).toBe(false);
    expect(document.activeElement?.textContent).toBe("Rename");

    fireEvent.keyDown(document.activeElement!, { key: "End" });
    expect(document.activeElement?.textContent).toBe("Delete");
    fireEvent.keyDown(document.activeElement!, { key: "Home" });
    expect(document.activeElement?.textContent).toBe("Rename");
    fireEvent.keyDown(document.activeElement!, { key: "ArrowUp" });
    expect(document.activeElement?.textContent).toBe("Delete");

    fireEvent.keyDown(document.activeElement!, { key: "Escape" });
    expect(screen.queryByRole("menu")).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Chat options" }));
    expect(outer).not.toHaveBeenCalledWith(expect.objectContaining({ key: "Escape" }));
  });

  it("returns focus to its button before running the chosen action", () => {
    const chosen: [string, string | undefined][] = [];
    render(
      <Menu
        label="Chat options"
        button="…"
        items={items((label) => chosen.push([label, document.activeElement?.getAttribute("aria-label") ?? undefined]))}
      />,
    );
    fireEvent.click(screen.getByRole("button", { name: "Chat options" }));
    fireEvent.click(screen.getByRole("menuitem", { name: "Pin" }));
    expect(chosen).toEqual([["Pin", "Chat options"]]);
    expect(screen.queryByRole("menu")).toBeNull();
  });
});

function DrawerHarness() {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" data-sidebar-toggle onClick={() => setOpen(true)}>
        Open sidebar
      </button>
      {open && (
        <Drawer label="Chats" onClose={() => setOpen(false)}>
          <div>
            <a href="/">Parley</a>
            <Menu label="Account menu" button="me" items={items()} />
            <button type="button" data-drawer-initial-focus onClick={() => setOpen(false)}>
              Close sidebar
            </button>
          </div>
        </Drawer>
      )}
    </>
  );
}

describe("Drawer", () => {
  it("moves focus in, keeps Tab inside, closes on Escape and gives focus back to the toggle", () => {
    render(<DrawerHarness />);
    const toggle = screen.getByRole("button", { name: "Open sidebar" });
    toggle.focus();
    fireEvent.click(toggle);
    const close = screen.getByRole("button", { name: "Close sidebar" });
    expect(document.activeElement).toBe(close);

    // Tab from the last control wraps to the first, Shift+Tab from the first to the last.
    expect(fireEvent.keyDown(close, { key: "Tab" })).toBe(false);
    expect(document.activeElement).toBe(screen.getByRole("link", { name: "Parley" }));
    fireEvent.keyDown(document.activeElement!, { key: "Tab", shiftKey: true });
    expect(document.activeElement).toBe(close);

    fireEvent.keyDown(close, { key: "Escape" });
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.activeElement).toBe(toggle);
  });

  it("closes only a menu opened inside it on Escape", () => {
    render(<DrawerHarness />);
    fireEvent.click(screen.getByRole("button", { name: "Open sidebar" }));
    fireEvent.click(screen.getByRole("button", { name: "Account menu" }));
    fireEvent.keyDown(document.activeElement!, { key: "Escape" });
    expect(screen.queryByRole("menu")).toBeNull();
    expect(screen.getByRole("dialog", { name: "Chats" })).toBeTruthy();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Account menu" }));
  });
});
