import { describe, expect, it } from "vitest";
import { nextTheme, resolvesDark, setTheme } from "./theme";

describe("theme", () => {
  it("follows the system unless the user chose", () => {
    expect(resolvesDark("system", true)).toBe(true);
    expect(resolvesDark("system", false)).toBe(false);
    expect(resolvesDark("light", true)).toBe(false);
    expect(resolvesDark("dark", false)).toBe(true);
  });

  it("cycles through the choices, sets the class and remembers the choice", () => {
    expect([nextTheme("system"), nextTheme("light"), nextTheme("dark")]).toEqual(["light", "dark", "system"]);
    setTheme("dark");
    expect(document.documentElement.classList.contains("dark")).toBe(true);
    expect(localStorage.getItem("parley.theme")).toBe("dark");
    setTheme("light");
    expect(document.documentElement.classList.contains("dark")).toBe(false);
    setTheme("system");
    expect(localStorage.getItem("parley.theme")).toBeNull();
  });
});
