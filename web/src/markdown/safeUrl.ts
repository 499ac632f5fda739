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

/** Images load from the network without a click: only http(s) sources. */
export function safeImageUrl(raw: string): string | null {
  const url = safeUrl(raw);
  if (url === null) return null;
  return /^https?:/i.test(url.replace(/\s/g, "")) ? url : null;
}
