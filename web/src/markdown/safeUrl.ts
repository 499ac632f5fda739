// Model output is untrusted: a link or image it writes must not run script in the page
// (stored XSS through rendered model output was a CVE in Open WebUI). Only these schemes, or
// no scheme at all (relative and fragment links), survive.
const allowedSchemes = new Set(["http", "https", "mailto"]);

/** The URL when it is safe to put in an `href`/`src`, otherwise null (the link is dropped). */
export function safeUrl(raw: string): string | null {
  // Browsers ignore control characters and whitespace inside a scheme ("java\tscript:"), so
  // they are ignored here too before the scheme is read.
  // eslint-disable-next-line no-control-regex
  const value = raw.replace(/[\u0000-\u0020\u007f-\u009f]/g, "");
  if (value === "") return null;
  const colon = value.indexOf(":");
  const firstDelimiter = value.search(/[/?#]/);
  const hasScheme = colon > 0 && (firstDelimiter === -1 || colon < firstDelimiter);
  if (!hasScheme) {
    // "//host/x" is a network path: a full URL in disguise, kept only since it inherits https.
    return raw.trim();
  }
  const scheme = value.slice(0, colon).toLowerCase();
  return allowedSchemes.has(scheme) ? raw.trim() : null;
}

function scheme(url: string): string {
  return /^([a-z][a-z0-9+.-]*):/i.exec(url.replace(/\s/g, ""))?.[1].toLowerCase() ?? "";
}

/** An image the page may load by itself (the user's own avatar): https only, as the
 * gateway's CSP (`img-src 'self' data: blob: https:`) would block http anyway. */
export function safeImageUrl(raw: string): string | null {
  const url = safeUrl(raw);
  return url !== null && scheme(url) === "https" ? url : null;
}

/** How an image in model output is shown. Nothing loads by itself: a remote image URL can
 * carry the conversation to its host (the prompt-injection exfiltration channel), so https
 * images wait for a click on a placeholder naming the host, and http ones (which the CSP
 * blocks) are only offered as a link. Other sources are dropped, leaving the alt text. */
export type ModelImage = { kind: "click-to-load"; url: string; host: string } | { kind: "link"; url: string; host: string } | null;

export function modelImage(raw: string): ModelImage {
  const url = safeUrl(raw);
  if (url === null) return null;
  const kind = scheme(url);
  if (kind !== "https" && kind !== "http") return null;
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    return null;
  }
  return kind === "https" ? { kind: "click-to-load", url, host } : { kind: "link", url, host };
}
