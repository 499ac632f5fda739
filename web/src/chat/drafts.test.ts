import { afterEach, describe, expect, it } from "vitest";
import {
  chatDraftKey,
  clearDrafts,
  firstMessageSent,
  forgetRefusedFirstMessage,
  handOverFirstMessage,
  isFirstMessage,
  newChatDraftKey,
  readDraft,
  refusedFirstMessage,
  returnFirstMessage,
  writeDraft,
} from "./drafts";

afterEach(() => {
  clearDrafts();
  sessionStorage.clear();
});

describe("drafts", () => {
  it("are kept per account and per chat, in sessionStorage", () => {
    writeDraft(chatDraftKey(1n, "7"), "alice's thought");
    writeDraft(newChatDraftKey(1n), "alice's new chat");
    expect(readDraft(chatDraftKey(1n, "7"))).toBe("alice's thought");
    expect(readDraft(chatDraftKey(1n, "8"))).toBe("");
    // Another account on this tab sees none of it.
    expect(readDraft(newChatDraftKey(2n))).toBe("");
    expect(readDraft(chatDraftKey(2n, "7"))).toBe("");
    expect(Object.keys(sessionStorage)).toHaveLength(2);
    writeDraft(chatDraftKey(1n, "7"), "");
    expect(Object.keys(sessionStorage)).toHaveLength(1);
  });

  it("are all gone after a sign-out, and only Parley's", () => {
    sessionStorage.setItem("something.else", "kept");
    writeDraft(chatDraftKey(1n, "7"), "text");
    writeDraft(newChatDraftKey(1n), "more");
    clearDrafts();
    expect(readDraft(chatDraftKey(1n, "7"))).toBe("");
    expect(readDraft(newChatDraftKey(1n))).toBe("");
    expect(sessionStorage.getItem("something.else")).toBe("kept");
  });

  it("hand a first message to its new chat, and a refused one back with its error", () => {
    handOverFirstMessage(1n, "9", "Hello there");
    expect(readDraft(chatDraftKey(1n, "9"))).toBe("Hello there");
    expect(isFirstMessage("9")).toBe(true);
    // Asking again (a second render, a retried load) does not use it up…
    expect(isFirstMessage("9")).toBe(true);
    // …sending does.
    firstMessageSent("9");
    expect(isFirstMessage("9")).toBe(false);

    returnFirstMessage(1n, "Hello there", { error: "no API config", apiConfigId: 3n });
    expect(readDraft(newChatDraftKey(1n))).toBe("Hello there");
    expect(refusedFirstMessage()).toEqual({ error: "no API config", apiConfigId: 3n });
    forgetRefusedFirstMessage();
    expect(refusedFirstMessage()).toBeNull();
  });
});
