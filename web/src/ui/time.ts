import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** A timestamp as a date and time in the page's language; undefined when unset. */
export function formatTime(ts: Timestamp | undefined, locale: string): string | undefined {
  if (!ts) return undefined;
  const millis = Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(millis));
}
