import { create } from "@bufbuild/protobuf";
import { ChatEventSchema, type ChatEvent } from "../gen/parley/chat/v1/message_pb";

// Tokens arrive far faster than a screen refreshes. Deltas are held until the next frame and
// handed to the reducer together (adjacent ones joined into one), so a long answer renders
// at most once per frame instead of once per token. Any other event (the answer starting,
// completing, failing) goes out at once, after the deltas before it, so order is kept.

export type Scheduler = (flush: () => void) => () => void;

/** The next animation frame; in a background tab (no frames) a timer instead. */
const nextFrame: Scheduler = (flush) => {
  if (typeof document !== "undefined" && document.hidden) {
    const timer = window.setTimeout(flush, 250);
    return () => window.clearTimeout(timer);
  }
  const frame = requestAnimationFrame(flush);
  return () => cancelAnimationFrame(frame);
};

function isDelta(event: ChatEvent): event is ChatEvent & { event: { case: "delta" | "reasoningDelta"; value: string } } {
  return event.event.case === "delta" || event.event.case === "reasoningDelta";
}

/** Joins runs of the same kind of delta: "He" + "llo" is one "Hello". */
export function coalesce(events: ChatEvent[]): ChatEvent[] {
  const out: ChatEvent[] = [];
  for (const event of events) {
    const last = out[out.length - 1];
    if (last && isDelta(last) && isDelta(event) && last.event.case === event.event.case) {
      out[out.length - 1] = create(ChatEventSchema, { event: { case: event.event.case, value: last.event.value + event.event.value } });
    } else {
      out.push(event);
    }
  }
  return out;
}

export interface EventBatcher {
  push(event: ChatEvent): void;
  /** Hands over whatever is held now (the stream ended). */
  flush(): void;
  /** Drops what is held (the view went away). */
  cancel(): void;
}

export function createEventBatcher(deliver: (events: ChatEvent[]) => void, schedule: Scheduler = nextFrame): EventBatcher {
  let held: ChatEvent[] = [];
  let cancelScheduled: (() => void) | null = null;
  const flush = () => {
    cancelScheduled?.();
    cancelScheduled = null;
    if (held.length === 0) return;
    const events = coalesce(held);
    held = [];
    deliver(events);
  };
  return {
    push(event) {
      held.push(event);
      if (!isDelta(event)) flush();
      else if (!cancelScheduled) cancelScheduled = schedule(flush);
    },
    flush,
    cancel() {
      cancelScheduled?.();
      cancelScheduled = null;
      held = [];
    },
  };
}
