// Model output is untrusted: a link or image it writes must not run script in the page
// (stored XSS through rendered model output was a CVE in Open WebUI). Only these schemes, or
// no scheme at all (relative and fragment links), survive.
const allowedSchemes = new Set(["http", "https", "mailto"]);

// Browsers drop tabs and newlines anywhere in a URL and control characters at its ends
// ("java\tscript:" is javascript:). All of them are ignored here before the scheme is read,
// which can only err towards dropping a link.
// eslint-disable-next-line no-control-regex
const invisible = /[\u0000-\u0020\u007f-\u009f]/g;

/** The scheme of `raw` in lower case, or null when it has none. */
function schemeOf(raw: string): string | null {
  const value = raw.replace(invisible, "");
  const colon = value.indexOf(":");
  const firstDelimiter = value.search(/[/?#]/);
  const hasScheme = colon > 0 && (firstDelimiter === -1 || colon < firstDelimiter);
  return hasScheme ? value.slice(0, colon).toLowerCase() : null;
}

/** The URL when it is safe to put in an `href`/`src`, otherwise null (the link is dropped). */
export function safeUrl(raw: string): string | null {
  if (raw.replace(invisible, "") === "") return null;
  const scheme = schemeOf(raw);
  // No scheme: a relative or fragment link, or "//host/x", a network path (a full URL in
  // disguise, kept only since it inherits the page's https).
  return scheme === null || allowedSchemes.has(scheme) ? raw.trim() : null;
}

/** An image the page may load by itself (the user's own avatar): https only, as the
 * gateway's CSP (`img-src 'self' data: blob: https:`) would block http anyway. */
export function safeImageUrl(raw: string): string | null {
  const url = safeUrl(raw);
  return url !== null && schemeOf(url) === "https" ? url : null;
}

/** How an image in model output is shown. Nothing loads by itself: a remote image URL can
 * carry the conversation to its host (the prompt-injection exfiltration channel), so https
 * images wait for a click on a placeholder naming the host, and http ones (which the CSP
 * blocks) are only offered as a link. Other sources are dropped, leaving the alt text. */
export type ModelImage = { kind: "click-to-load"; url: string; host: string } | { kind: "link"; url: string; host: string } | null;

export function modelImage(raw: string): ModelImage {
  const url = safeUrl(raw);
  if (url === null) return null;
  const kind = schemeOf(url);
  if (kind !== "https" && kind !== "http") return null;
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    return null;
  }
  return kind === "https" ? { kind: "click-to-load", url, host } : { kind: "link", url, host };
}
