import { describe, expect, it } from "vitest";
import { insertMention, mentionAt, mentionSuggestions, MAX_SUGGESTIONS } from "./mentions";

describe("mentionAt", () => {
  it("finds the @word at the caret", () => {
    expect(mentionAt("hi @al", 6)).toEqual({ start: 3, query: "al" });
    expect(mentionAt("@", 1)).toEqual({ start: 0, query: "" });
    expect(mentionAt("hi @alice and", 9)).toEqual({ start: 3, query: "alice" });
    expect(mentionAt("你好 @小", 5)).toEqual({ start: 3, query: "小" });
  });

  it("ignores addresses and words without @", () => {
    expect(mentionAt("mail bob@exa", 12)).toBeNull();
    expect(mentionAt("hello", 5)).toBeNull();
    expect(mentionAt("@alice done", 11)).toBeNull();
  });
});

describe("mentionSuggestions", () => {
  const people = [
    { handle: "ai", label: "AI" },
    { handle: "alice", label: "Alice Liddell" },
    { handle: "bob", label: "Bobby" },
    { handle: "malice", label: "" },
  ];

  it("puts handles starting with the query first", () => {
    expect(mentionSuggestions("al", people).map((c) => c.handle)).toEqual(["alice", "malice"]);
    expect(mentionSuggestions("", people)).toHaveLength(4);
    expect(mentionSuggestions("bobby", people).map((c) => c.handle)).toEqual(["bob"]);
    expect(mentionSuggestions("zed", people)).toEqual([]);
  });

  it("shows a bounded list", () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ handle: `user${i}`, label: "" }));
    expect(mentionSuggestions("user", many)).toHaveLength(MAX_SUGGESTIONS);
  });
});

describe("insertMention", () => {
  it("replaces the typed part and places the caret after a space", () => {
    expect(insertMention("hi @al", 3, 6, "alice")).toEqual({ text: "hi @alice ", caret: 10 });
    expect(insertMention("@b there", 0, 2, "bob")).toEqual({ text: "@bob there", caret: 5 });
  });
});
