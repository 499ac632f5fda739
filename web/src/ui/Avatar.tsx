import { useState } from "react";
import { safeImageUrl } from "../markdown/safeUrl";

export function Avatar({ name, url, size = 28 }: { name: string; url?: string; size?: number }) {
  const [broken, setBroken] = useState(false);
  const src = url ? safeImageUrl(url) : null;
  const initial = (name.trim()[0] ?? "?").toUpperCase();
  if (src && !broken) {
    return (
      <img
        src={src}
        alt=""
        width={size}
        height={size}
        referrerPolicy="no-referrer"
        onError={() => setBroken(true)}
        className="shrink-0 rounded-full object-cover"
        style={{ width: size, height: size }}
      />
    );
  }
  return (
    <span
      aria-hidden="true"
      className="flex shrink-0 items-center justify-center rounded-full bg-emerald-600 font-semibold text-[#fff]"
      style={{ width: size, height: size, fontSize: size * 0.45 }}
    >
      {initial}
    </span>
  );
}
