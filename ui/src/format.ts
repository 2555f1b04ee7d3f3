// Times for people: ages, countdowns, timestamps.

export function span(ms: number): string {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

export function age(iso: string, now = Date.now()): string {
  return span(now - Date.parse(iso));
}

/** "4m 12s left", "overdue 3m", or "" without a deadline. */
export function countdown(iso: string | null, now = Date.now()): string {
  if (!iso) return "";
  const left = Date.parse(iso) - now;
  if (left <= 0) return `overdue ${span(-left)}`;
  const s = Math.round(left / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s left`;
  return `${span(left)} left`;
}

export function urgent(iso: string | null, now = Date.now()): boolean {
  return iso !== null && Date.parse(iso) - now < 2 * 60 * 1000;
}

export function when(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function words(s: string): string {
  return s.replace(/_/g, " ");
}

/** A compact time for lists: the time today, the date otherwise (with the year if not this one). */
export function short(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
    : d.getFullYear() === today.getFullYear()
      ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" })
      : d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

/** 1234567 → "1.2 MB". */
export function bytes(n: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return u === 0 ? `${n} bytes` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** 100000 → "100,000" (whatever locale the web view runs in). */
export function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
