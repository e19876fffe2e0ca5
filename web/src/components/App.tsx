import { useEffect, useLayoutEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import { channelTitle } from "../logic";
import { navigate, parseRoute, path } from "../router";
import {
  auth, connection, currentChannelId, expireTyping, highlightMessageId, markRead, me, openThreadId, reconnectNow,
  sendActivity, sessionExpired, signOut, subscribePresence, summaries, titleFor, users,
} from "../store";
import { InviteSignUp, Setup, SignIn } from "./Auth";
import { ChannelView } from "./ChannelView";
import { NewChannelDialog, NewDmDialog, Switcher } from "./Overlays";
import { AdminPage, SearchPage, SettingsPage } from "./Pages";
import { ReauthDialog, RequiredEnrolment } from "./TwoFactor";
import { orderedChannelIds, Sidebar } from "./Sidebar";

function ConnectionBanner() {
  const state = connection.value;
  if (state === "online") return null;
  return (
    <div class={`connection-banner ${state}`} role="status" aria-live="polite" data-state={state}>
      {state === "connecting" ? t("conn.connecting") : t("conn.reconnecting")}
    </div>
  );
}

function TopBar({ onMenu }: { onMenu: () => void }) {
  const u = me.value!;
  const admin = u.role === "owner" || u.role === "admin";
  return (
    <header class="topbar">
      <button type="button" class="icon-button menu" aria-label={t("sidebar.label")} onClick={onMenu}>☰</button>
      <a href="/" class="brand" onClick={(e) => { e.preventDefault(); navigate("/"); }}>{t("app.name")}</a>
      <form class="topbar-search" role="search" onSubmit={(e) => {
        e.preventDefault();
        const q = (e.currentTarget.elements.namedItem("q") as HTMLInputElement).value;
        navigate(`/search?q=${encodeURIComponent(q)}`);
      }}>
        <input name="q" type="search" placeholder={t("nav.search")} aria-label={t("nav.search")} />
      </form>
      <nav class="topbar-nav" aria-label={u.display_name}>
        <a href="/settings" onClick={(e) => { e.preventDefault(); navigate("/settings"); }}>{t("nav.settings")}</a>
        {admin && <a href="/admin" onClick={(e) => { e.preventDefault(); navigate("/admin"); }}>{t("nav.admin")}</a>}
        <span class="me-name" data-testid="me">{u.display_name}</span>
        <button type="button" class="link" onClick={() => void signOut()}>{t("auth.signOut")}</button>
      </nav>
    </header>
  );
}

function Main() {
  const route = parseRoute(path.value);
  const [switcher, setSwitcher] = useState(false);
  const [dialog, setDialog] = useState<"channel" | "dm" | null>(null);
  const [menu, setMenu] = useState(false);

  const channelId = route.page === "channel" ? route.channelId : null;
  useEffect(() => {
    if (currentChannelId.value !== channelId) {
      openThreadId.value = null;
      highlightMessageId.value = null;
    }
    currentChannelId.value = channelId;
    setMenu(false);
  }, [channelId]);

  useEffect(() => {
    if (route.page === "home") {
      const first = orderedChannelIds()[0];
      if (first !== undefined) navigate(`/c/${first}`, true);
    }
  }, [route.page, summaries.value.size]);

  // A layout effect: the shortcuts work from the first painted frame (an effect runs a frame
  // later, so a quick Ctrl+K right after sign-in could be lost).
  useLayoutEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
        e.preventDefault();
        setSwitcher(true);
      } else if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
        e.preventDefault();
        const ids = orderedChannelIds();
        const i = ids.indexOf(currentChannelId.value ?? -1);
        const next = ids[(i + (e.key === "ArrowDown" ? 1 : ids.length - 1) + (i < 0 ? 1 : 0)) % ids.length];
        if (next !== undefined) navigate(`/c/${next}`);
      } else if (e.key === "Escape" && openThreadId.value !== null && !e.defaultPrevented) {
        openThreadId.value = null;
      }
    };
    window.addEventListener("keydown", onKey);
    const tick = window.setInterval(expireTyping, 1000);
    const online = () => reconnectNow();
    window.addEventListener("online", online);
    const visibility = () => {
      const visible = document.visibilityState === "visible";
      sendActivity(visible);
      if (visible && currentChannelId.value !== null) void markRead(currentChannelId.value);
    };
    document.addEventListener("visibilitychange", visibility);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("online", online);
      document.removeEventListener("visibilitychange", visibility);
      window.clearInterval(tick);
    };
  }, []);

  // Follow the presence of everyone in the sidebar's conversations (re-sent when they change).
  const memberKey = [...summaries.value.values()].map((x) => (x.channel.member_ids ?? []).length).join(",");
  useEffect(() => subscribePresence(), [memberKey, summaries.value.size]);

  const s = channelId !== null ? summaries.value.get(channelId) : undefined;
  const name = s ? channelTitle(s, me.value!.id, users.value) : null;
  useEffect(() => {
    document.title = titleFor(name);
  });

  let content;
  if (route.page === "settings") content = <SettingsPage />;
  else if (route.page === "admin") content = <AdminPage />;
  else if (route.page === "search") content = <SearchPage q={route.q} />;
  else if (route.page === "channel") content = <ChannelView channelId={route.channelId} messageId={route.messageId} />;
  else content = <main class="channel-view"><p class="empty">{t("common.loading")}</p></main>;

  return (
    <div class={`shell${menu ? " menu-open" : ""}`}>
      <a class="skip-link" href="#composer" onClick={(e) => { e.preventDefault(); (document.querySelector('[data-testid="composer"]') as HTMLElement | null)?.focus(); }}>{t("composer.label")}</a>
      <TopBar onMenu={() => setMenu(!menu)} />
      <ConnectionBanner />
      <div class="body">
        <Sidebar onNewChannel={() => { setMenu(false); setDialog("channel"); }} onNewDm={() => { setMenu(false); setDialog("dm"); }} onPick={() => setMenu(false)} />
        {content}
      </div>
      {switcher && <Switcher onClose={() => setSwitcher(false)} />}
      {dialog === "channel" && <NewChannelDialog onClose={() => setDialog(null)} />}
      {dialog === "dm" && <NewDmDialog onClose={() => setDialog(null)} />}
      <ReauthDialog />
      {sessionExpired.value && (
        <div class="backdrop"><div class="modal" role="dialog" aria-modal="true" aria-label={t("auth.signIn")}><SignIn expired /></div></div>
      )}
    </div>
  );
}

export function App() {
  const route = parseRoute(path.value);
  const state = auth.value;
  if (route.page === "invite" && state !== "signedIn") return <div class="auth-page"><InviteSignUp token={route.token} /></div>;
  if (state === "loading") return <div class="auth-page" aria-busy="true"><p>{t("common.loading")}</p></div>;
  if (state === "needsSetup" || (route.page === "setup" && state !== "signedIn")) return <div class="auth-page"><Setup /></div>;
  if (state === "signedOut") return <div class="auth-page"><SignIn /></div>;
  if (state === "mustEnrol") return <div class="auth-page"><RequiredEnrolment /></div>;
  if (route.page === "signIn" || route.page === "setup" || route.page === "invite") {
    navigate("/", true);
  }
  return <Main />;
}
