import { beforeEach, describe, expect, it } from "vitest";
import { forgetMarkdownParts, rememberedParts, rememberParts } from "./partsHint";
import { partsOf } from "./features";

describe("the parts each chat needed", () => {
  beforeEach(() => localStorage.clear());

  it("are read from the chat's texts", () => {
    expect(partsOf(["plain", "```rust\nfn\n```", "a \\(x\\)\n```Python\n```"])).toEqual({ math: true, languages: ["rust", "python"] });
    expect(partsOf(["costs $5"])).toEqual({ math: false, languages: [] });
  });

  it("are remembered per chat, for the most recent chats only, and forgotten on sign-out", () => {
    rememberParts("1", { math: true, languages: ["rust"] });
    rememberParts("2", { math: false, languages: [] });
    expect(rememberedParts("1")).toEqual({ math: true, languages: ["rust"] });
    expect(rememberedParts("2")).toBeNull();
    // A chat that no longer needs anything is dropped.
    rememberParts("1", { math: false, languages: [] });
    expect(rememberedParts("1")).toBeNull();
    for (let i = 0; i < 60; i++) rememberParts(`c${i}`, { math: true, languages: [] });
    expect(rememberedParts("c0")).toBeNull();
    expect(rememberedParts("c10")).not.toBeNull();
    expect(rememberedParts("c59")).not.toBeNull();
    forgetMarkdownParts();
    expect(rememberedParts("c59")).toBeNull();
  });

  it("survive garbage in storage", () => {
    localStorage.setItem("parley.markdownParts", "{not json");
    expect(rememberedParts("1")).toBeNull();
    localStorage.setItem("parley.markdownParts", JSON.stringify({ 1: { math: "yes" } }));
    expect(rememberedParts("1")).toBeNull();
    rememberParts("2", { math: true, languages: [] });
    expect(rememberedParts("2")).toEqual({ math: true, languages: [] });
  });
});
