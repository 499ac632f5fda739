import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import {
  ChatErrorSchema,
  ChatEventSchema,
  MessageRole,
  MessageSchema,
  MessageStatus,
  TokenUsageSchema,
  type ChatEvent,
  type Message,
} from "../gen/parley/chat/v1/message_pb";
import { SessionSchema } from "../gen/parley/chat/v1/session_pb";
import { emptyThread, fromProto, streamingAnswer, threadReducer, type ThreadAction, type ThreadState } from "./thread";
import { coalesce, createEventBatcher } from "./eventBatcher";

function message(id: number, role: MessageRole, content: string, status = MessageStatus.COMPLETE): Message {
  return create(MessageSchema, { id: BigInt(id), sessionId: 1n, role, content, status });
}
const user = (id: number, content: string) => message(id, MessageRole.USER, content);
const assistant = (id: number, content: string, status = MessageStatus.COMPLETE) => message(id, MessageRole.ASSISTANT, content, status);

const ev = (event: ChatEvent["event"]): ThreadAction => ({ type: "event", event: create(ChatEventSchema, { event }) });

function run(actions: ThreadAction[], from: ThreadState = emptyThread): ThreadState {
  return actions.reduce(threadReducer, from);
}

describe("thread reducer", () => {
  it("streams a send: the pending message becomes the stored one, deltas build the answer", () => {
    const state = run([
      { type: "sendStarted", tempId: "pending-1", content: "Hi" },
      ev({ case: "userMessage", value: user(10, "Hi") }),
      ev({ case: "assistantStarted", value: assistant(11, "", MessageStatus.STREAMING) }),
      ev({ case: "reasoningDelta", value: "Let me " }),
      ev({ case: "reasoningDelta", value: "think." }),
      ev({ case: "delta", value: "Hel" }),
      ev({ case: "delta", value: "lo!" }),
    ]);
    expect(state.messages.map((m) => [m.id, m.role, m.content, !!m.pending])).toEqual([
      ["10", "user", "Hi", false],
      ["11", "assistant", "Hello!", false],
    ]);
    expect(state.messages[1].reasoning).toBe("Let me think.");
    expect(state.streamingId).toBe("11");

    const done = threadReducer(
      state,
      ev({
        case: "completed",
        value: create(MessageSchema, {
          ...assistant(11, "Hello!"),
          usage: create(TokenUsageSchema, { promptTokens: 12n, completionTokens: 3n }),
        }),
      }),
    );
    expect(done.streamingId).toBeNull();
    expect(done.messages[1]).toMatchObject({ status: "complete", content: "Hello!", promptTokens: 12, completionTokens: 3 });
  });

  it("keeps what was produced and shows the server's message on an error event", () => {
    const state = run([
      { type: "loaded", messages: [fromProto(user(1, "q"))] },
      ev({ case: "assistantStarted", value: assistant(2, "", MessageStatus.STREAMING) }),
      ev({ case: "delta", value: "partial" }),
      ev({ case: "error", value: create(ChatErrorSchema, { code: 9, message: "provider rejected the key" }) }),
    ]);
    expect(state.messages[1]).toMatchObject({ content: "partial", status: "failed", error: "provider rejected the key" });
    // Shown on the answer, not twice.
    expect(state.error).toBeNull();
    expect(state.streamingId).toBeNull();
  });

  it("shows an error that has no answer to carry it chat-wide", () => {
    const state = run([
      { type: "sendStarted", tempId: "pending-1", content: "q" },
      ev({ case: "userMessage", value: user(1, "q") }),
      ev({ case: "error", value: create(ChatErrorSchema, { code: 14, message: "llm-service unavailable" }) }),
    ]);
    expect(state.error).toBe("llm-service unavailable");
    expect(state.messages.map((m) => m.id)).toEqual(["1"]);
  });

  it("removes a message that was never stored when the send fails, with the error", () => {
    const state = run([
      { type: "loaded", messages: [fromProto(user(1, "old"))] },
      { type: "sendStarted", tempId: "pending-9", content: "new text" },
      { type: "streamFailed", error: "RESOURCE_EXHAUSTED" },
      { type: "sendFailed", tempId: "pending-9", error: "too many messages" },
    ]);
    expect(state.messages.map((m) => m.content)).toEqual(["old"]);
    expect(state.error).toBe("too many messages");
  });

  it("replays a re-attached generation from the text so far without duplicating it", () => {
    // ListMessages saw the row mid-stream with some persisted text…
    const loaded = run([{ type: "loaded", messages: [fromProto(user(1, "q")), fromProto(assistant(2, "Hel", MessageStatus.STREAMING))] }]);
    expect(loaded.streamingId).toBe("2");
    // …then WatchGeneration sends the started row, the content so far as one delta, then live deltas.
    const state = run(
      [
        { type: "watchStarted", messageId: "2" },
        ev({ case: "assistantStarted", value: assistant(2, "", MessageStatus.STREAMING) }),
        ev({ case: "delta", value: "Hello" }),
        ev({ case: "delta", value: " world" }),
      ],
      loaded,
    );
    expect(state.messages).toHaveLength(2);
    expect(state.messages[1].content).toBe("Hello world");
  });

  it("puts a regenerated answer in the old one's place and drops the old one on completion", () => {
    const loaded = run([
      {
        type: "loaded",
        messages: [
          fromProto(user(1, "q")),
          fromProto(assistant(2, "first answer")),
          fromProto(user(3, "q2")),
          fromProto(assistant(4, "a2")),
        ],
      },
    ]);
    const streaming = run(
      [
        { type: "regenerateStarted", messageId: "2" },
        ev({ case: "assistantStarted", value: assistant(5, "", MessageStatus.STREAMING) }),
        ev({ case: "delta", value: "second" }),
      ],
      loaded,
    );
    expect(streaming.messages.map((m) => m.id)).toEqual(["1", "5", "3", "4"]);
    expect(streaming.replaced?.content).toBe("first answer");
    const done = threadReducer(streaming, ev({ case: "completed", value: assistant(5, "second answer") }));
    expect(done.messages.map((m) => [m.id, m.content])).toEqual([
      ["1", "q"],
      ["5", "second answer"],
      ["3", "q2"],
      ["4", "a2"],
    ]);
    expect(done.replaced).toBeNull();
  });

  it("applies edits, deletions and a stop, and ignores session updates", () => {
    const state = run([
      { type: "loaded", messages: [fromProto(user(1, "q")), fromProto(assistant(2, "a", MessageStatus.STREAMING))] },
      ev({ case: "sessionUpdated", value: create(SessionSchema, { id: 1n, title: "Title" }) }),
      { type: "messageUpdated", message: fromProto(assistant(2, "a", MessageStatus.STOPPED)) },
      { type: "messageUpdated", message: fromProto(user(1, "q edited")) },
    ]);
    expect(state.messages.map((m) => [m.content, m.status])).toEqual([
      ["q edited", "complete"],
      ["a", "stopped"],
    ]);
    expect(threadReducer(state, { type: "messageDeleted", id: "1" }).messages.map((m) => m.id)).toEqual(["2"]);
  });

  it("keeps an error across a reload only when asked", () => {
    const failed = run([{ type: "streamFailed", error: "boom" }]);
    expect(threadReducer(failed, { type: "loaded", messages: [], keepError: true }).error).toBe("boom");
    expect(threadReducer(failed, { type: "loaded", messages: [] }).error).toBeNull();
    expect(threadReducer(failed, { type: "dismissError" }).error).toBeNull();
  });

  it("reports a failed stop without dropping the running generation", () => {
    const state = run([
      { type: "loaded", messages: [fromProto(user(1, "q")), fromProto(assistant(2, "a", MessageStatus.STREAMING))] },
      { type: "showError", error: "stop failed" },
      ev({ case: "delta", value: "b" }),
    ]);
    expect(state.error).toBe("stop failed");
    expect(state.streamingId).toBe("2");
    expect(state.messages[1].content).toBe("ab");
  });
});

describe("streamingAnswer", () => {
  it("is the answer still being written, and nothing once every answer is final", () => {
    const messages = [
      user(1, "q"),
      assistant(2, "old", MessageStatus.STOPPED),
      user(3, "q2"),
      assistant(4, "Hel", MessageStatus.STREAMING),
    ];
    expect(streamingAnswer(messages.map(fromProto))?.id).toBe("4");
    expect(streamingAnswer(messages.slice(0, 3).map(fromProto))).toBeUndefined();
  });
});

describe("batched events", () => {
  const event = (e: ChatEvent["event"]) => create(ChatEventSchema, { event: e });
  const stream: ChatEvent[] = [
    event({ case: "userMessage", value: user(10, "Hi") }),
    event({ case: "assistantStarted", value: assistant(11, "", MessageStatus.STREAMING) }),
    ...Array.from("Let me think.", (c) => event({ case: "reasoningDelta", value: c })),
    ...Array.from("Hello there!", (c) => event({ case: "delta", value: c })),
    event({ case: "completed", value: create(MessageSchema, { ...assistant(11, "Hello there!"), reasoning: "Let me think." }) }),
  ];

  it("gives the reducer the same history whether events come one by one or a frame at a time", () => {
    const oneByOne = run([
      { type: "sendStarted", tempId: "p", content: "Hi" },
      ...stream.map((e) => ({ type: "event", event: e }) as ThreadAction),
    ]);
    const batched = run([
      { type: "sendStarted", tempId: "p", content: "Hi" },
      { type: "events", events: coalesce(stream) },
    ]);
    expect(batched).toEqual(oneByOne);
    expect(batched.messages[1]).toMatchObject({ content: "Hello there!", reasoning: "Let me think.", status: "complete" });
  });

  it("holds deltas until the next frame, joined, and lets other events through at once, in order", () => {
    let scheduled: (() => void) | null = null;
    let schedules = 0;
    const delivered: ChatEvent[][] = [];
    const batcher = createEventBatcher(
      (events) => delivered.push(events),
      (flush) => {
        schedules++;
        scheduled = flush;
        return () => (scheduled = null);
      },
    );
    batcher.push(stream[0]);
    batcher.push(stream[1]);
    expect(delivered.map((d) => d.map((e) => e.event.case))).toEqual([["userMessage"], ["assistantStarted"]]);

    for (const c of "Hello") batcher.push(event({ case: "delta", value: c }));
    expect(delivered).toHaveLength(2);
    expect(schedules).toBe(1);
    (scheduled as (() => void) | null)?.();
    expect(delivered[2].map((e) => [e.event.case, e.event.value])).toEqual([["delta", "Hello"]]);

    // A final event does not wait: the deltas before it go with it, first.
    batcher.push(event({ case: "delta", value: " there" }));
    batcher.push(event({ case: "reasoningDelta", value: "hm" }));
    batcher.push(event({ case: "delta", value: "!" }));
    batcher.push(stream[stream.length - 1]);
    expect(delivered[3].map((e) => e.event.case)).toEqual(["delta", "reasoningDelta", "delta", "completed"]);
    expect(scheduled).toBeNull();

    batcher.push(event({ case: "delta", value: "late" }));
    batcher.cancel();
    expect(delivered).toHaveLength(4);
  });
  it("keeps the note of a complete answer that was cut, for the view to show", () => {
    const cut = create(MessageSchema, { ...assistant(7, "a long answer"), error: "the answer reached the maximum size and was cut" });
    const done = threadReducer(emptyThread, ev({ case: "completed", value: cut }));
    expect(done.messages.at(-1)).toMatchObject({ status: "complete", error: "the answer reached the maximum size and was cut" });
  });
});

describe("versions and branches", () => {
  const versioned = (m: Message, siblings: number[]) => {
    m.siblingIds = siblings.map(BigInt);
    return m;
  };

  it("lists a message's versions only when there is more than one", () => {
    expect(fromProto(versioned(assistant(3, "b"), [2, 3])).siblingIds).toEqual(["2", "3"]);
    expect(fromProto(versioned(assistant(3, "b"), [3])).siblingIds).toBeUndefined();
  });

  it("sending a new version of a question drops it and what followed from the view", () => {
    const loaded = run([{ type: "loaded", messages: [user(1, "q1"), assistant(2, "a1"), user(3, "q2"), assistant(4, "a2")].map(fromProto) }]);
    const state = run([{ type: "sendStarted", tempId: "pending-1", content: "q2, edited", versionOf: "3" }], loaded);
    expect(state.messages.map((m) => [m.id, m.content, !!m.pending])).toEqual([
      ["1", "q1", false],
      ["2", "a1", false],
      ["pending-1", "q2, edited", true],
    ]);
  });

  it("an edited answer keeps the versions it was listed with", () => {
    const loaded = run([{ type: "loaded", messages: [user(1, "q"), versioned(assistant(3, "b"), [2, 3])].map(fromProto) }]);
    const state = run([{ type: "messageUpdated", message: fromProto(assistant(3, "b, edited")) }], loaded);
    expect(state.messages[1]).toMatchObject({ content: "b, edited", siblingIds: ["2", "3"] });
  });
});
