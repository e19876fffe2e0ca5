// A tiny history-API router.
import { signal } from "@preact/signals";

export const path = signal(location.pathname + location.search);

export function navigate(to: string, replace = false): void {
  if (to === path.value) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  path.value = to;
}

window.addEventListener("popstate", () => {
  path.value = location.pathname + location.search;
});

export type Route =
  | { page: "home" }
  | { page: "channel"; channelId: number; messageId: number | null }
  | { page: "setup" }
  | { page: "signIn" }
  | { page: "invite"; token: string }
  | { page: "settings" }
  | { page: "admin" }
  | { page: "search"; q: string };

export function parseRoute(full: string): Route {
  const [p, query = ""] = full.split("?");
  const parts = p.split("/").filter(Boolean);
  if (parts[0] === "setup") return { page: "setup" };
  if (parts[0] === "sign-in") return { page: "signIn" };
  if (parts[0] === "invite" && parts[1]) return { page: "invite", token: decodeURIComponent(parts[1]) };
  if (parts[0] === "settings") return { page: "settings" };
  if (parts[0] === "admin") return { page: "admin" };
  if (parts[0] === "search") return { page: "search", q: new URLSearchParams(query).get("q") ?? "" };
  if (parts[0] === "c" && /^\d+$/.test(parts[1] ?? "")) {
    const messageId = parts[2] === "m" && /^\d+$/.test(parts[3] ?? "") ? Number(parts[3]) : null;
    return { page: "channel", channelId: Number(parts[1]), messageId };
  }
  return { page: "home" };
}
