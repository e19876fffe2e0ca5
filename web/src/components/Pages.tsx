import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { formatDateTime, LOCALES, locale, setLocale, setTimeZone, t, type Locale } from "../i18n";
import { navigate } from "../router";
import { me, userName, users } from "../store";
import { setTheme, theme, type Theme } from "../theme";
import type { Invite, Role, SearchResult, User } from "../types";
import { TwoFactorSettings, withReauth } from "./TwoFactor";

function Back() {
  return <a href="/" class="back" onClick={(e) => { e.preventDefault(); navigate("/"); }}>← {t("nav.back")}</a>;
}

export function SettingsPage() {
  const u = me.value!;
  const [display, setDisplay] = useState(u.display_name);
  const [title, setTitle] = useState(u.title ?? "");
  const [status, setStatus] = useState(u.status?.text ?? "");
  const [saved, setSaved] = useState("");
  const [notify, setNotify] = useState(localStorage.getItem("courtyard.notifications") === "on");
  const save = async (e: Event) => {
    e.preventDefault();
    setSaved("");
    try {
      const updated = await api<User>("PATCH", "/me", { display_name: display, title });
      if ((u.status?.text ?? "") !== status) await api<User>("PUT", "/me/status", { text: status, emoji: null, expires_at: null });
      me.value = { ...me.value!, ...updated };
      setSaved(t("settings.saved"));
    } catch (exc) {
      setSaved(t("common.error", { detail: exc instanceof Error ? exc.message : String(exc) }));
    }
  };
  const toggleNotify = async (on: boolean) => {
    if (on && typeof Notification !== "undefined" && Notification.permission !== "granted") {
      on = (await Notification.requestPermission()) === "granted";
    }
    localStorage.setItem("courtyard.notifications", on ? "on" : "off");
    setNotify(on);
  };
  return (
    <main class="page" aria-labelledby="settings-title">
      <Back />
      <h1 id="settings-title">{t("settings.title")}</h1>
      <form class="stack" onSubmit={save}>
        <label>{t("field.displayName")}<input value={display} onInput={(e) => setDisplay(e.currentTarget.value)} /></label>
        <label>{t("settings.title.field")}<input value={title} onInput={(e) => setTitle(e.currentTarget.value)} /></label>
        <label>{t("settings.status")}<input value={status} onInput={(e) => setStatus(e.currentTarget.value)} /></label>
        <button type="submit" class="primary">{t("settings.save")}</button>
        {saved && <p role="status">{saved}</p>}
      </form>
      <fieldset class="stack">
        <legend>{t("settings.theme")}</legend>
        {(["system", "light", "dark"] as Theme[]).map((x) => (
          <label class="row" key={x}><input type="radio" name="theme" checked={theme.value === x} onChange={() => setTheme(x)} />{t(`settings.theme.${x}`)}</label>
        ))}
      </fieldset>
      <label class="stack">{t("settings.language")}
        <select value={locale.value} onChange={(e) => setLocale(e.currentTarget.value as Locale)} aria-label={t("settings.language")}>
          {LOCALES.map((l) => <option key={l.id} value={l.id} lang={l.id}>{l.name}</option>)}
        </select>
      </label>
      <TimeZoneField />
      <label class="row"><input type="checkbox" checked={notify} onChange={(e) => void toggleNotify(e.currentTarget.checked)} />{t("settings.notifications")}</label>
      <TwoFactorSettings />
    </main>
  );
}

const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
// The zones this browser knows (the server checks the name against its own IANA database).
const ZONES: string[] = (() => {
  const supported = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.("timeZone") ?? [];
  return supported.length ? supported : [BROWSER_ZONE];
})();

/** The profile's time zone: empty follows the browser; times everywhere render in it. */
function TimeZoneField() {
  const [status, setStatus] = useState("");
  const current = me.value?.timezone ?? "";
  const choose = async (zone: string) => {
    setStatus("");
    try {
      const updated = await api<User>("PATCH", "/me", { timezone: zone });
      me.value = { ...me.value!, ...updated };
      setTimeZone(updated.timezone);
      setStatus(t("settings.saved"));
    } catch (exc) {
      setStatus(t("common.error", { detail: exc instanceof Error ? exc.message : String(exc) }));
    }
  };
  return (
    <label class="stack">{t("settings.timezone")}
      <select value={current} onChange={(e) => void choose(e.currentTarget.value)} data-testid="timezone">
        <option value="">{t("settings.timezoneBrowser", { zone: BROWSER_ZONE })}</option>
        {current && !ZONES.includes(current) && <option value={current}>{current}</option>}
        {ZONES.map((z) => <option key={z} value={z}>{z.replace(/_/g, " ")}</option>)}
      </select>
      {status && <span role="status">{status}</span>}
    </label>
  );
}

const ROLES: Role[] = ["owner", "admin", "member", "guest"];

export function AdminPage() {
  const [invites, setInvites] = useState<Invite[]>([]);
  const [link, setLink] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const run = (p: Promise<unknown>) => {
    setError("");
    setNotice("");
    return p.catch((exc) => setError(exc instanceof Error ? exc.message : String(exc)));
  };
  const loadInvites = () => run(api<{ invites: Invite[] }>("GET", "/invites").then((r) => setInvites(r.invites)));
  useEffect(() => { void loadInvites(); }, []);
  const all = [...users.value.values()].filter((u) => !u.is_bot).sort((a, b) => a.username.localeCompare(b.username));
  const setUser = (u: User) => { const next = new Map(users.value); next.set(u.id, u); users.value = next; };
  return (
    <main class="page" aria-labelledby="admin-title">
      <Back />
      <h1 id="admin-title">{t("admin.title")}</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      <section aria-labelledby="admin-users">
        <h2 id="admin-users">{t("admin.users")}</h2>
        <table class="admin-table">
          <tbody>
            {all.map((u) => (
              <tr key={u.id}>
                <td>{u.display_name} <span class="dim">@{u.username}</span> {u.deactivated && <span class="tag">{t("admin.deactivated")}</span>}</td>
                <td>
                  <select aria-label={`${t("admin.role")} ${u.username}`} value={u.role} disabled={u.id === me.value?.id}
                    onChange={(e) => { const role = e.currentTarget.value; void run(withReauth(() => api<User>("PUT", `/users/${u.id}/role`, { role })).then(setUser)); }}>
                    {ROLES.map((r) => <option key={r} value={r}>{t(`role.${r}`)}</option>)}
                  </select>
                </td>
                <td>
                  {u.id !== me.value?.id && (u.deactivated
                    ? <button type="button" onClick={() => void run(api<User>("POST", `/users/${u.id}/reactivate`).then(setUser))}>{t("admin.reactivate")}</button>
                    : <button type="button" class="danger" onClick={() => void run(api<User>("POST", `/users/${u.id}/deactivate`).then(setUser))}>{t("admin.deactivate")}</button>)}
                  {u.id !== me.value?.id && !u.deactivated && (
                    <button type="button" aria-label={`${t("admin.resetTwoFactor")} @${u.username}`}
                      onClick={() => void run(withReauth(() => api("DELETE", `/users/${u.id}/two-factor`)).then(() => setNotice(t("admin.twoFactorReset", { name: u.username }))))}>
                      {t("admin.resetTwoFactor")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="admin-invites">
        <h2 id="admin-invites">{t("admin.invites")}</h2>
        <div class="row">
          <select aria-label={t("admin.role")} value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            {ROLES.filter((r) => r !== "owner").map((r) => <option key={r} value={r}>{t(`role.${r}`)}</option>)}
          </select>
          <button type="button" class="primary" onClick={() => void run(api<{ path: string }>("POST", "/invites", { role }).then((r) => { setLink(`${location.origin}${r.path}`); void loadInvites(); }))}>{t("admin.newInvite")}</button>
        </div>
        {link && <label class="stack">{t("admin.inviteLink")}<input readOnly value={link} data-testid="invite-link" onFocus={(e) => e.currentTarget.select()} /></label>}
        <ul class="browse-list">
          {invites.map((i) => (
            <li key={i.id}>
              <span>{t(`role.${i.role}`)} · {userName(i.created_by)} · {i.used_at ? t("admin.used") : i.revoked ? t("admin.revoked") : t("admin.expires", { date: formatDateTime(i.expires_at) })}</span>
              {!i.used_at && !i.revoked && <button type="button" onClick={() => void run(api("DELETE", `/invites/${i.id}`).then(loadInvites))}>{t("admin.revoke")}</button>}
            </li>
          ))}
        </ul>
      </section>
    </main>
  );
}

function Snippet({ r }: { r: SearchResult }) {
  // Highlights are [start, end) code-point offsets into message.text; marked up here as text
  // nodes (the server's HTML snippet is never injected).
  const chars = Array.from(r.message.text);
  const first = r.highlights[0]?.[0] ?? 0;
  const from = Math.max(0, first - 80);
  const to = Math.min(chars.length, from + 220);
  const parts: preact.ComponentChildren[] = [from > 0 ? "…" : ""];
  let at = from;
  for (const [start, end] of r.highlights) {
    if (end <= at || start >= to) continue;
    const s = Math.max(start, at);
    if (s > at) parts.push(chars.slice(at, s).join(""));
    parts.push(<mark>{chars.slice(s, Math.min(end, to)).join("")}</mark>);
    at = Math.min(end, to);
  }
  if (at < to) parts.push(chars.slice(at, to).join(""));
  if (to < chars.length) parts.push("…");
  return <p class="snippet">{parts}</p>;
}

export function SearchPage({ q }: { q: string }) {
  const [query, setQuery] = useState(q);
  const [results, setResults] = useState<SearchResult[] | null>(null);
  const [error, setError] = useState("");
  const run = async (text: string) => {
    if (!text.trim()) return;
    setError("");
    try {
      const page = await api<{ results: SearchResult[] }>("POST", "/search", { q: text, limit: 50 });
      setResults(page.results);
    } catch (exc) {
      setError(exc instanceof Error ? exc.message : String(exc));
    }
  };
  useEffect(() => { void run(q); }, [q]);
  return (
    <main class="page" aria-labelledby="search-title">
      <Back />
      <h1 id="search-title">{t("search.title")}</h1>
      <form class="row" role="search" onSubmit={(e) => { e.preventDefault(); navigate(`/search?q=${encodeURIComponent(query)}`); }}>
        <input type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} placeholder={t("search.placeholder")} aria-label={t("search.title")} autoFocus />
        <button type="submit" class="primary">{t("search.title")}</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {results && results.length === 0 && <p>{t("search.none")}</p>}
      <ul class="search-results">
        {results?.map((r) => (
          <li key={r.message.id}>
            <a href={`/c/${r.channel.id}/m/${r.message.id}`} onClick={(e) => { e.preventDefault(); navigate(`/c/${r.channel.id}/m/${r.message.id}`); }}>
              <span class="dim">#{r.channel.name} · {userName(r.message.sender_id)} · {formatDateTime(r.message.created_at)}</span>
              <Snippet r={r} />
            </a>
          </li>
        ))}
      </ul>
    </main>
  );
}
