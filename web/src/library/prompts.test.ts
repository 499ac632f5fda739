import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { PromptSchema } from "../gen/parley/chat/v1/prompt_pb";
import { fillPrompt, matchPrompts, replaceCommand, slashAt } from "./prompts";

const prompt = (command: string, title: string) => create(PromptSchema, { command, title });

describe("the composer's / commands", () => {
  it("sees a command at the start of the text or after a space, up to the caret", () => {
    expect(slashAt("/sum", 4)).toEqual({ start: 0, query: "sum" });
    expect(slashAt("please /", 8)).toEqual({ start: 7, query: "" });
    expect(slashAt("line\n/Fix", 9)).toEqual({ start: 5, query: "fix" });
    expect(slashAt("a/b", 3)).toBeNull();
    expect(slashAt("/sum more", 9)).toBeNull();
    expect(slashAt("/sum more", 4)).toEqual({ start: 0, query: "sum" });
  });

  it("lists commands starting with the query first, then titles containing it", () => {
    const prompts = [prompt("translate", "Translate"), prompt("explain", "Explain simply"), prompt("ex", "Summarize an example")];
    expect(matchPrompts("ex", prompts).map((p) => p.command)).toEqual(["ex", "explain"]);
    expect(matchPrompts("simp", prompts).map((p) => p.command)).toEqual(["explain"]);
    expect(matchPrompts("", prompts)).toHaveLength(3);
  });

  it("fills variables as the server reads them and leaves the rest", () => {
    expect(fillPrompt("Explain {{topic}} to {{ who }}; {{topic}}! {{other}} {{not one}}", { topic: "tides", who: "kids" })).toBe(
      "Explain tides to kids; tides! {{other}} {{not one}}",
    );
    expect(fillPrompt("{{a}}", { a: "$& and $1" })).toBe("$& and $1");
  });

  it("replaces the typed command and puts the caret after the text", () => {
    expect(replaceCommand("Hi /ex there", 3, 6, "Explain it")).toEqual({ text: "Hi Explain it there", caret: 13 });
  });
});
