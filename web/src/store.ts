// Client state (Preact signals) and the live event stream with resume.
import { batch, computed, signal } from "@preact/signals";
import { api, ApiError, rememberCsrf, setUnauthorizedHandler } from "./api";
import {
  backoffMs, countIncoming, documentTitle, mergeMessages, patchMessage, settlePending,
  type PendingSend, type Typing,
} from "./logic";
import { setTimeZone } from "./i18n";
import { setMentionSelf } from "./markdown";
import type { ChannelSummary, HistoryPage, Message, ReactionGroup, SignedIn, StateResponse, User } from "./types";

export interface ChannelMessages { list: Message[]; hasMoreBefore: boolean; hasMoreAfter: boolean; loading: boolean }
export interface ThreadState { root: Message; replies: Message[]; hasMoreBefore: boolean }
export type Connection = "connecting" | "online" | "reconnecting";
// mustEnrol: the organisation requires a second factor this user has not set up; only enrolment
// (and signing out) works until they do.
export type AuthState = "loading" | "signedOut" | "needsSetup" | "signedIn" | "mustEnrol";

export const auth = signal<AuthState>("loading");
export const me = signal<User | null>(null);
export const sessionExpired = signal(false);
export const deactivated = signal(false);
export const summaries = signal<Map<number, ChannelSummary>>(new Map());
export const users = signal<Map<number, User>>(new Map());
export const channelMessages = signal<Map<number, ChannelMessages>>(new Map());
export const threads = signal<Map<number, ThreadState>>(new Map());
export const currentChannelId = signal<number | null>(null);
export const openThreadId = signal<number | null>(null);
export const pending = signal<PendingSend[]>([]);
export const typing = signal<Typing[]>([]);
export const presence = signal<Map<number, string>>(new Map());
export const receipts = signal<Map<number, Map<number, number>>>(new Map());
export const connection = signal<Connection>("connecting");
export const now = signal(Date.now());
export const highlightMessageId = signal<number | null>(null);

export const totalUnread = computed(() => {
  let n = 0;
  for (const s of summaries.value.values()) if (s.membership && !s.membership.muted) n += s.unread_count;
  return n;
});

let position = 0;
let socket: WebSocket | null = null;
let attempt = 0;
let reconnectTimer: number | undefined;
let pingTimer: number | undefined;
let stopped = true;

setUnauthorizedHandler(() => {
  if (auth.value === "signedIn") {
    sessionExpired.value = true;
    closeSocket();
  }
});

export function userName(id: number): string {
  const u = users.value.get(id);
  return u ? u.display_name || u.username : `#${id}`;
}

function setSummary(s: ChannelSummary): void {
  const next = new Map(summaries.value);
  next.set(s.channel.id, s);
  summaries.value = next;
}

function updateUser(u: User): void {
  const next = new Map(users.value);
  next.set(u.id, u);
  users.value = next;
  if (me.value && u.id === me.value.id) {
    me.value = { ...me.value, ...u };
    setTimeZone(u.timezone); // changed in another tab or device
  }
}

export async function boot(): Promise<void> {
  try {
    const setup = await api<{ needs_setup: boolean }>("GET", "/setup");
    if (setup.needs_setup) {
      auth.value = "needsSetup";
      return;
    }
  } catch {
    /* fall through to sign-in */
  }
  try {
    await loadState();
    auth.value = "signedIn";
    startSocket();
  } catch (exc) {
    if (mustEnrol(exc)) auth.value = "mustEnrol";
    else auth.value = "signedOut";
  }
}

/** The server's answer when the organisation requires a second factor this user has not set up. */
export function mustEnrol(exc: unknown): boolean {
  return exc instanceof ApiError && exc.status === 403 && exc.code === "two_factor_enrolment_required";
}

/** Enrolment finished (the forced kind): load everything and carry on as signed in. */
export async function enrolled(): Promise<void> {
  await loadState();
  auth.value = "signedIn";
  startSocket();
}

export async function loadState(): Promise<void> {
  const state = await api<StateResponse>("GET", "/state");
  const dir = await loadUsers();
  batch(() => {
    me.value = state.user;
    setMentionSelf(state.user.username);
    setTimeZone(state.user.timezone);
    const map = new Map<number, ChannelSummary>();
    for (const s of state.channels) map.set(s.channel.id, s);
    summaries.value = map;
    dir.set(state.user.id, state.user);
    users.value = dir;
    position = state.position;
  });
}

async function loadUsers(): Promise<Map<number, User>> {
  const map = new Map<number, User>();
  let cursor = 0;
  for (let page = 0; page < 50; page++) {
    const res = await api<{ users: User[]; next_cursor: number | null }>("GET", `/users?limit=1000&cursor=${cursor}&include_deactivated=true`);
    for (const u of res.users) map.set(u.id, u);
    if (res.next_cursor === null) break;
    cursor = res.next_cursor;
  }
  return map;
}

export async function signedIn(result: SignedIn): Promise<void> {
  rememberCsrf(result.csrf_token);
  const wasExpired = sessionExpired.value;
  try {
    await loadState();
  } catch (exc) {
    if (!mustEnrol(exc)) throw exc;
    closeSocket();
    batch(() => {
      sessionExpired.value = false;
      deactivated.value = false;
      auth.value = "mustEnrol";
    });
    return;
  }
  batch(() => {
    sessionExpired.value = false;
    deactivated.value = false;
    auth.value = "signedIn";
  });
  if (wasExpired) for (const p of pending.value) if (p.state === "failed") void retrySend(p.clientId);
  startSocket();
}

export async function signOut(): Promise<void> {
  try {
    await api("POST", "/auth/sign-out");
  } catch {
    /* the session may already be gone */
  }
  closeSocket();
  sessionStorage.clear();
  location.assign("/sign-in");
}

// ---- the event socket -------------------------------------------------------------------

function startSocket(): void {
  stopped = false;
  attempt = 0;
  openSocket();
}

function closeSocket(): void {
  stopped = true;
  window.clearTimeout(reconnectTimer);
  window.clearInterval(pingTimer);
  socket?.close(1000);
  socket = null;
}

function openSocket(): void {
  if (stopped) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/events?since=${position}`);
  socket = ws;
  let opened = false;
  ws.onopen = () => { opened = true; };
  connection.value = attempt === 0 && connection.value !== "reconnecting" ? "connecting" : "reconnecting";
  ws.onmessage = (ev) => {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(String(ev.data));
    } catch {
      return;
    }
    onFrame(frame);
  };
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    socket = null;
    window.clearInterval(pingTimer);
    if (stopped) return;
    // Refused before it opened: the server turns a handshake down with an HTTP status (401 for
    // a signed-out session or one that must first enrol in two-factor authentication), which a
    // browser only sees as close 1006. Ask the REST API which it is before retrying.
    if (ev.code === 4001 || ev.code === 4004 || !opened) {
      void checkSession();
      return;
    }
    if (ev.code === 4003) {
      deactivated.value = true;
      sessionExpired.value = true;
      return;
    }
    connection.value = "reconnecting";
    reconnectTimer = window.setTimeout(openSocket, backoffMs(attempt++));
  };
  window.clearInterval(pingTimer);
  pingTimer = window.setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
  }, 25_000);
}

async function checkSession(): Promise<void> {
  const retry = () => {
    if (stopped) return;
    connection.value = "reconnecting";
    reconnectTimer = window.setTimeout(openSocket, backoffMs(attempt++));
  };
  try {
    await api("GET", "/me");
  } catch (exc) {
    // 403: a second factor became required — the enrolment page, and no more socket attempts.
    if (mustEnrol(exc)) {
      closeSocket();
      auth.value = "mustEnrol";
      return;
    }
    // 401: the handler shows the sign-in dialog (and stopped the socket).
    if (exc instanceof ApiError && exc.status === 401) return;
    // Anything else (the server is down or restarting): try the socket again later.
  }
  retry();
}

/** Presence hint: idle while the page is hidden, active when it is visible again. */
export function sendActivity(active: boolean): void {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "activity", state: active ? "active" : "idle" }));
}

/** Reconnect immediately (e.g. the browser came back online). */
export function reconnectNow(): void {
  if (stopped || (socket && socket.readyState <= WebSocket.OPEN)) return;
  window.clearTimeout(reconnectTimer);
  openSocket();
}

function onFrame(frame: Record<string, unknown>): void {
  const type = frame.type as string;
  if (type === "hello") return;
  if (type === "caught_up") {
    attempt = 0;
    connection.value = "online";
    subscribePresence();
    return;
  }
  if (type === "resync_required") {
    void resync(frame.position as number);
    return;
  }
  if (type === "typing") return onTyping(frame);
  if (type === "presence") {
    const next = new Map(presence.value);
    next.set(frame.user_id as number, frame.status as string);
    presence.value = next;
    return;
  }
  if (typeof frame.position !== "number") return;
  if (frame.position <= position) return; // already applied (resume seam)
  position = frame.position;
  applyEvent(type, frame);
}

async function resync(newPosition: number): Promise<void> {
  await loadState();
  position = Math.max(position, newPosition);
  channelMessages.value = new Map();
  threads.value = new Map();
  if (currentChannelId.value !== null) await loadLatest(currentChannelId.value);
}

export function subscribePresence(): void {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const ids = new Set<number>();
  for (const s of summaries.value.values()) for (const id of s.channel.member_ids ?? []) ids.add(id);
  const cur = currentChannelId.value;
  const msgs = cur !== null ? channelMessages.value.get(cur)?.list ?? [] : [];
  for (const m of msgs.slice(-200)) ids.add(m.sender_id);
  ids.delete(me.value?.id ?? -1);
  socket.send(JSON.stringify({ type: "presence.subscribe", user_ids: [...ids].slice(0, 500) }));
}

function onTyping(frame: Record<string, unknown>): void {
  const entry: Typing = {
    userId: frame.user_id as number,
    channelId: frame.channel_id as number,
    threadRootId: (frame.thread_root_id as number | null) ?? null,
    until: Date.now() + ((frame.expires_in_ms as number) || 5000),
  };
  typing.value = [...typing.value.filter((x) => !(x.userId === entry.userId && x.channelId === entry.channelId)), entry];
  now.value = Date.now();
}

let lastTypingSent = 0;
export function sendTyping(channelId: number, threadRootId: number | null): void {
  const t = Date.now();
  if (t - lastTypingSent < 2500 || !socket || socket.readyState !== WebSocket.OPEN) return;
  lastTypingSent = t;
  socket.send(JSON.stringify({ type: "typing", channel_id: channelId, thread_root_id: threadRootId }));
}

function patchEverywhere(id: number, channelId: number, patch: (m: Message) => Message): void {
  const cm = channelMessages.value.get(channelId);
  if (cm) {
    const list = patchMessage(cm.list, id, patch);
    if (list !== cm.list) {
      const next = new Map(channelMessages.value);
      next.set(channelId, { ...cm, list });
      channelMessages.value = next;
    }
  }
  let changed = false;
  const nextThreads = new Map(threads.value);
  for (const [rootId, th] of threads.value) {
    if (th.root.id === id) {
      nextThreads.set(rootId, { ...th, root: patch(th.root) });
      changed = true;
    } else {
      const replies = patchMessage(th.replies, id, patch);
      if (replies !== th.replies) {
        nextThreads.set(rootId, { ...th, replies });
        changed = true;
      }
    }
  }
  if (changed) threads.value = nextThreads;
}

function replaceMessage(m: Message): void {
  patchEverywhere(m.id, m.channel_id, (old) => ({ ...m, attachments: m.attachments ?? old.attachments }));
}

export function applyEvent(type: string, f: Record<string, unknown>): void {
  const my = me.value?.id ?? -1;
  switch (type) {
    case "message.created": {
      const m = f.message as Message;
      addMessage(m);
      const s = summaries.value.get(m.channel_id);
      if (s) {
        const viewing = currentChannelId.value === m.channel_id && document.visibilityState === "visible";
        setSummary(countIncoming(s, m, my, viewing));
        if (viewing && m.thread_root_id === null && m.sender_id !== my) scheduleRead(m.channel_id);
        if (!viewing && m.sender_id !== my) notify(s, m);
      }
      typing.value = typing.value.filter((x) => !(x.userId === m.sender_id && x.channelId === m.channel_id));
      break;
    }
    case "message.edited":
    case "message.deleted":
    case "message.pinned":
    case "message.unpinned":
      replaceMessage(f.message as Message);
      break;
    case "thread.updated":
      replaceMessage(f.root as Message);
      break;
    case "reaction.added":
    case "reaction.removed": {
      const reactions = f.reactions as ReactionGroup[];
      patchEverywhere(f.message_id as number, f.channel_id as number, (m) => ({ ...m, reactions }));
      break;
    }
    case "channel.created":
    case "channel.updated":
    case "channel.archived":
    case "channel.unarchived": {
      const c = f.channel as ChannelSummary["channel"];
      const s = summaries.value.get(c.id);
      const isMember = (c.member_ids ?? []).includes(my);
      setSummary(
        s ? { ...s, channel: c }
          : { channel: c, membership: isMember ? { channel_id: c.id, user_id: my, joined_at: c.created_at, last_read_seq: 0, muted: false, starred: false } : null, unread_count: 0, mention_count: 0 },
      );
      break;
    }
    case "member.joined": {
      const c = f.channel as ChannelSummary["channel"];
      const member = f.member as { user_id: number; joined_at: string; last_read_seq: number };
      const s = summaries.value.get(c.id);
      if (member.user_id === my) {
        setSummary({
          channel: c,
          membership: s?.membership ?? { channel_id: c.id, user_id: my, joined_at: member.joined_at, last_read_seq: member.last_read_seq, muted: false, starred: false },
          unread_count: s?.unread_count ?? 0,
          mention_count: s?.mention_count ?? 0,
        });
      } else if (s) setSummary({ ...s, channel: c });
      break;
    }
    case "member.left": {
      const channelId = f.channel_id as number;
      const s = summaries.value.get(channelId);
      if (!s) break;
      if (f.user_id === my) {
        if (s.channel.kind === "public") setSummary({ ...s, membership: null, unread_count: 0, mention_count: 0 });
        else {
          const next = new Map(summaries.value);
          next.delete(channelId);
          summaries.value = next;
        }
      } else {
        const ids = (s.channel.member_ids ?? []).filter((id) => id !== f.user_id);
        setSummary({ ...s, channel: { ...s.channel, member_ids: s.channel.member_ids ? ids : null, member_count: Math.max(0, s.channel.member_count - 1) } });
      }
      break;
    }
    case "read_marker.moved": {
      const channelId = f.channel_id as number;
      const seq = f.last_read_seq as number;
      if (f.user_id === my) {
        const s = summaries.value.get(channelId);
        if (s?.membership && seq > s.membership.last_read_seq) {
          const caught = seq >= s.channel.last_seq;
          setSummary({ ...s, membership: { ...s.membership, last_read_seq: seq }, unread_count: caught ? 0 : s.unread_count, mention_count: caught ? 0 : s.mention_count });
        }
      } else {
        const next = new Map(receipts.value);
        const per = new Map(next.get(channelId) ?? []);
        per.set(f.user_id as number, Math.max(seq, per.get(f.user_id as number) ?? 0));
        next.set(channelId, per);
        receipts.value = next;
      }
      break;
    }
    case "user.created":
    case "user.updated":
    case "user.deactivated":
      updateUser(f.user as User);
      break;
    case "sessions.ended":
      break;
  }
}

function addMessage(m: Message): void {
  if (m.thread_root_id !== null) {
    const th = threads.value.get(m.thread_root_id);
    if (th) {
      const next = new Map(threads.value);
      next.set(m.thread_root_id, { ...th, replies: mergeMessages(th.replies, [m]) });
      threads.value = next;
    }
  } else {
    const cm = channelMessages.value.get(m.channel_id);
    const early = loadsInFlight.get(m.channel_id);
    if (early) early.push(m); // merged when the page in flight arrives
    if (cm && !cm.hasMoreAfter) {
      const next = new Map(channelMessages.value);
      next.set(m.channel_id, { ...cm, list: mergeMessages(cm.list, [m]) });
      channelMessages.value = next;
    }
  }
  const settled = settlePending(pending.value, [m]);
  if (settled !== pending.value) pending.value = settled;
}

function notify(s: ChannelSummary, m: Message): void {
  const my = me.value?.id ?? -1;
  const dm = s.channel.kind === "direct" || s.channel.kind === "group";
  // The same mentions as the sidebar's mention badge: @you, @channel and @here.
  if (!(dm || m.mentioned_user_ids.includes(my) || m.mentions_channel || m.mentions_here)) return;
  if (s.membership?.muted || typeof Notification === "undefined" || Notification.permission !== "granted") return;
  if (localStorage.getItem("courtyard.notifications") !== "on") return;
  const n = new Notification(userName(m.sender_id), { body: m.text.slice(0, 200), tag: `cy-${m.id}` });
  n.onclick = () => {
    window.focus();
    currentChannelId.value = m.channel_id;
  };
}

// ---- history, reading, sending ----------------------------------------------------------

function setChannelMessages(channelId: number, value: ChannelMessages): void {
  const next = new Map(channelMessages.value);
  next.set(channelId, value);
  channelMessages.value = next;
}

// Messages that arrive by event while a channel's first page is in flight: the page may have
// been read before they were stored, so they are merged into it (never lost, never doubled).
const loadsInFlight = new Map<number, Message[]>();

export async function loadLatest(channelId: number, limit = 50): Promise<void> {
  const early: Message[] = [];
  loadsInFlight.set(channelId, early);
  let page: HistoryPage;
  try {
    page = await api<HistoryPage>("GET", `/channels/${channelId}/messages?limit=${limit}`);
  } finally {
    if (loadsInFlight.get(channelId) === early) loadsInFlight.delete(channelId);
  }
  const current = channelMessages.value.get(channelId);
  const newest = page.messages.at(-1)?.seq ?? 0;
  const kept = current && !current.hasMoreAfter ? current.list.filter((m) => m.seq > newest) : [];
  const list = mergeMessages(page.messages, [...kept, ...early.filter((m) => m.seq > newest)]);
  setChannelMessages(channelId, { list, hasMoreBefore: page.has_more_before, hasMoreAfter: false, loading: false });
  settlePendingFrom(list);
}

export async function loadAround(channelId: number, seq: number): Promise<void> {
  const page = await api<HistoryPage>("GET", `/channels/${channelId}/messages?limit=50&around=${seq}`);
  setChannelMessages(channelId, { list: page.messages, hasMoreBefore: page.has_more_before, hasMoreAfter: page.has_more_after, loading: false });
}

export async function loadOlder(channelId: number): Promise<boolean> {
  const cm = channelMessages.value.get(channelId);
  if (!cm || cm.loading || !cm.hasMoreBefore || cm.list.length === 0) return false;
  setChannelMessages(channelId, { ...cm, loading: true });
  try {
    const page = await api<HistoryPage>("GET", `/channels/${channelId}/messages?limit=50&before=${cm.list[0].seq}`);
    const now = channelMessages.value.get(channelId) ?? cm;
    setChannelMessages(channelId, { ...now, list: mergeMessages(now.list, page.messages), hasMoreBefore: page.has_more_before, loading: false });
    return true;
  } catch {
    setChannelMessages(channelId, { ...(channelMessages.value.get(channelId) ?? cm), loading: false });
    return false;
  }
}

export async function loadNewer(channelId: number): Promise<void> {
  const cm = channelMessages.value.get(channelId);
  if (!cm || cm.loading || !cm.hasMoreAfter || cm.list.length === 0) return;
  setChannelMessages(channelId, { ...cm, loading: true });
  const page = await api<HistoryPage>("GET", `/channels/${channelId}/messages?limit=50&after=${cm.list[cm.list.length - 1].seq}`);
  const cur = channelMessages.value.get(channelId) ?? cm;
  setChannelMessages(channelId, { ...cur, list: mergeMessages(cur.list, page.messages), hasMoreAfter: page.has_more_after, loading: false });
}

function settlePendingFrom(list: Message[]): void {
  const settled = settlePending(pending.value, list);
  if (settled !== pending.value) pending.value = settled;
}

const readTimers = new Map<number, number>();
export function scheduleRead(channelId: number): void {
  if (readTimers.has(channelId)) return;
  readTimers.set(channelId, window.setTimeout(() => {
    readTimers.delete(channelId);
    void markRead(channelId);
  }, 300));
}

export async function markRead(channelId: number): Promise<void> {
  const s = summaries.value.get(channelId);
  const cm = channelMessages.value.get(channelId);
  if (!s?.membership || !cm || cm.hasMoreAfter) return;
  // Only what is on screen counts as read.
  const last = cm.list.at(-1)?.seq;
  if (last === undefined || (last <= s.membership.last_read_seq && s.unread_count === 0)) return;
  const latest = summaries.value.get(channelId) ?? s;
  setSummary({ ...latest, membership: latest.membership ? { ...latest.membership, last_read_seq: Math.max(last, latest.membership.last_read_seq) } : null, unread_count: 0, mention_count: 0 });
  try {
    await api("POST", `/channels/${channelId}/read`, { seq: last });
  } catch {
    /* a later read will catch up */
  }
}

function newClientId(): string {
  return crypto.randomUUID();
}

export async function send(channelId: number, text: string, threadRootId: number | null, fileIds: number[] = []): Promise<void> {
  const entry: PendingSend = { clientId: newClientId(), channelId, threadRootId, text, fileIds, state: "sending" };
  pending.value = [...pending.value, entry];
  await deliver(entry);
}

export async function retrySend(clientId: string): Promise<void> {
  const entry = pending.value.find((p) => p.clientId === clientId);
  if (!entry) return;
  const again: PendingSend = { ...entry, state: "sending", error: undefined };
  pending.value = pending.value.map((p) => (p.clientId === clientId ? again : p));
  await deliver(again);
}

export function discardSend(clientId: string): void {
  pending.value = pending.value.filter((p) => p.clientId !== clientId);
}

async function deliver(entry: PendingSend): Promise<void> {
  try {
    const m = await api<Message>("POST", `/channels/${entry.channelId}/messages`, {
      text: entry.text,
      client_message_id: entry.clientId,
      thread_root_id: entry.threadRootId,
      file_ids: entry.fileIds,
    });
    addMessage(m);
    const s = summaries.value.get(m.channel_id);
    if (s) setSummary(countIncoming(s, m, me.value?.id ?? -1, true));
  } catch (exc) {
    const error = exc instanceof Error ? exc.message : String(exc);
    pending.value = pending.value.map((p) => (p.clientId === entry.clientId ? { ...p, state: "failed", error } : p));
  }
}

export async function openThread(rootId: number): Promise<void> {
  openThreadId.value = rootId;
  const res = await api<{ root: Message; replies: HistoryPage }>("GET", `/messages/${rootId}/thread?limit=200`);
  const next = new Map(threads.value);
  const existing = threads.value.get(rootId);
  next.set(rootId, { root: res.root, replies: mergeMessages(res.replies.messages, existing?.replies ?? []), hasMoreBefore: res.replies.has_more_before });
  threads.value = next;
}

export async function toggleReaction(m: Message, emoji: string): Promise<void> {
  const mine = m.reactions.find((r) => r.emoji === emoji)?.user_ids.includes(me.value?.id ?? -1);
  const res = await api<{ reactions: ReactionGroup[] }>(mine ? "DELETE" : "PUT", `/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`);
  patchEverywhere(m.id, m.channel_id, (x) => ({ ...x, reactions: res.reactions }));
}

export async function editMessage(m: Message, text: string): Promise<void> {
  replaceMessage(await api<Message>("PATCH", `/messages/${m.id}`, { text }));
}

export async function deleteMessage(m: Message): Promise<void> {
  replaceMessage(await api<Message>("DELETE", `/messages/${m.id}`));
}

export async function setPinned(m: Message, pinned: boolean): Promise<void> {
  replaceMessage(await api<Message>(pinned ? "PUT" : "DELETE", `/messages/${m.id}/pin`));
}

export async function setPreference(channelId: number, prefs: { muted?: boolean; starred?: boolean }): Promise<void> {
  setSummary(await api<ChannelSummary>("PUT", `/channels/${channelId}/preferences`, prefs));
}

// Messages whose receipts were fetched: "seen by" for a message loaded from history comes from
// the server once; later read markers arrive live (read_marker.moved).
const receiptsFetched = new Set<number>();

/** Who has already read `m` (loaded from history): their read markers are at least at its seq. */
export async function loadReceipts(m: Message): Promise<void> {
  if (receiptsFetched.has(m.id)) return;
  receiptsFetched.add(m.id);
  let res: { available: boolean; read_by: number[] };
  try {
    res = await api<{ available: boolean; read_by: number[] }>("GET", `/messages/${m.id}/receipts`);
  } catch {
    receiptsFetched.delete(m.id); // try again next time
    return;
  }
  if (!res.available || res.read_by.length === 0) return;
  const next = new Map(receipts.value);
  const per = new Map(next.get(m.channel_id) ?? []);
  for (const uid of res.read_by) per.set(uid, Math.max(m.seq, per.get(uid) ?? 0));
  next.set(m.channel_id, per);
  receipts.value = next;
}

/** Change a channel's topic; other members get it live as channel.updated. */
export async function updateTopic(channelId: number, topic: string): Promise<void> {
  const channel = await api<ChannelSummary["channel"]>("PATCH", `/channels/${channelId}`, { topic });
  const s = summaries.value.get(channelId);
  if (s) setSummary({ ...s, channel });
}

export async function joinChannel(channelId: number): Promise<void> {
  await api("POST", `/channels/${channelId}/join`);
  setSummary(await api<ChannelSummary>("GET", `/channels/${channelId}`));
}

export async function refreshSummary(channelId: number): Promise<ChannelSummary> {
  const s = await api<ChannelSummary>("GET", `/channels/${channelId}`);
  setSummary(s);
  return s;
}

/** The document title follows the unread count. */
export function titleFor(channel: string | null): string {
  return documentTitle(totalUnread.value, channel);
}

export function expireTyping(): void {
  const t = Date.now();
  now.value = t;
  if (typing.value.some((x) => x.until <= t)) typing.value = typing.value.filter((x) => x.until > t);
}
