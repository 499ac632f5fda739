// Light or dark: the system's choice unless the user picked one (kept in this browser).
// The choice is a class on <html>; index.css turns the palette around under it.
import { useSyncExternalStore } from "react";

export type ThemeChoice = "system" | "light" | "dark";
export const themeChoices: ThemeChoice[] = ["system", "light", "dark"];

const storageKey = "parley.theme";
const listeners = new Set<() => void>();
let choice: ThemeChoice = readChoice();

function readChoice(): ThemeChoice {
  try {
    const stored = localStorage.getItem(storageKey);
    return stored === "light" || stored === "dark" ? stored : "system";
  } catch {
    return "system";
  }
}

function systemDark(): boolean {
  return (
    typeof window !== "undefined" && typeof window.matchMedia === "function" && window.matchMedia("(prefers-color-scheme: dark)").matches
  );
}

/** Whether `choice` shows dark when the system prefers `prefersDark`. */
export function resolvesDark(choice: ThemeChoice, prefersDark: boolean): boolean {
  return choice === "dark" || (choice === "system" && prefersDark);
}

function apply(): void {
  if (typeof document === "undefined") return;
  document.documentElement.classList.toggle("dark", resolvesDark(choice, systemDark()));
}

/** Sets the class before the first render, and follows the system while the choice is "system". */
export function startTheme(): void {
  apply();
  if (typeof window !== "undefined" && typeof window.matchMedia === "function") {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", apply);
  }
}

export function setTheme(next: ThemeChoice): void {
  choice = next;
  try {
    if (next === "system") localStorage.removeItem(storageKey);
    else localStorage.setItem(storageKey, next);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  apply();
  for (const listener of listeners) listener();
}

/** The next choice of the toggle: system → light → dark → system. */
export function nextTheme(current: ThemeChoice): ThemeChoice {
  return themeChoices[(themeChoices.indexOf(current) + 1) % themeChoices.length];
}

export function useTheme(): ThemeChoice {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => choice,
  );
}
