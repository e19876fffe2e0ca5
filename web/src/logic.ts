// Pure client-state logic (no DOM, no network): unit-tested with Vitest.
import type { ChannelSummary, Message, User } from "./types";

/** Merge messages into a list ordered by seq; a message already present is replaced (events are idempotent). */
export function mergeMessages(list: readonly Message[], incoming: readonly Message[]): Message[] {
  if (incoming.length === 0) return list as Message[];
  // The common live case, one new message after the newest: append without re-sorting the history.
  const newest = list.length ? list[list.length - 1].seq : -Infinity;
  if (incoming.length === 1 && incoming[0].seq > newest) return [...list, incoming[0]];
  const byId = new Map<number, Message>();
  for (const m of list) byId.set(m.id, m);
  for (const m of incoming) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** Replace a message if present (edits, reactions, pins); returns the same list when absent. */
export function patchMessage(list: readonly Message[], id: number, patch: (m: Message) => Message): Message[] {
  const i = list.findIndex((m) => m.id === id);
  if (i < 0) return list as Message[];
  const copy = list.slice();
  copy[i] = patch(copy[i]);
  return copy;
}

export type Row =
  | { kind: "day"; key: string; iso: string }
  | { kind: "unread"; key: string }
  | { kind: "message"; key: string; message: Message; grouped: boolean };

const GROUP_WINDOW_MS = 5 * 60 * 1000;

function localDay(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

// Parsed once per message object (messages are replaced, never mutated, when they change).
const createdMs = new WeakMap<Message, number>();
function createdAt(m: Message): number {
  let ms = createdMs.get(m);
  if (ms === undefined) createdMs.set(m, (ms = Date.parse(m.created_at)));
  return ms;
}

/** Rows to render: day separators (days in the time zone of `dayOf`), a "new messages" line after
 * lastReadSeq, consecutive messages grouped. */
export function buildRows(messages: readonly Message[], lastReadSeq: number | null, dayOf: (iso: string) => string = localDay): Row[] {
  return appendRows([], null, messages, 0, lastReadSeq, dayOf);
}

/** Rows for messages[from..] pushed onto `rows`, which already holds the rows of messages[..from]
 * (whose last message is `prev`). Returns `rows`. */
function appendRows(rows: Row[], prev: Message | null, messages: readonly Message[], from: number, lastReadSeq: number | null, dayOf: (iso: string) => string): Row[] {
  let prevDay = prev ? dayOf(prev.created_at) : "";
  let unreadPlaced = lastReadSeq === null || (prev !== null && prev.seq > lastReadSeq);
  for (let i = from; i < messages.length; i++) {
    const m = messages[i];
    const day = dayOf(m.created_at);
    let grouped = false;
    if (!prev || prevDay !== day) {
      rows.push({ kind: "day", key: `day-${day}`, iso: m.created_at });
    } else {
      grouped =
        prev.sender_id === m.sender_id &&
        !prev.deleted_at &&
        createdAt(m) - createdAt(prev) < GROUP_WINDOW_MS;
    }
    if (!unreadPlaced && lastReadSeq !== null && m.seq > lastReadSeq) {
      rows.push({ kind: "unread", key: "unread" });
      unreadPlaced = true;
      grouped = false;
    }
    rows.push({ kind: "message", key: `m-${m.id}`, message: m, grouped });
    prev = m;
    prevDay = day;
  }
  return rows;
}

/** A message list's rows with each row's index by key and whether it takes focus. */
export interface RowIndex {
  readonly messages: readonly Message[];
  readonly lastReadSeq: number | null;
  readonly dayOf: (iso: string) => string;
  readonly scope: unknown;
  readonly rows: readonly Row[];
  readonly indexOf: ReadonlyMap<string, number>;
  readonly focusable: readonly boolean[];
}

/** Whether `next` is `prev` with messages appended after its newest (every old entry the same
 * object at the same place): then the old rows are still right and only new ones are needed. */
function appendedTo(prev: readonly Message[], next: readonly Message[]): boolean {
  if (next.length <= prev.length) return false;
  for (let i = prev.length - 1; i >= 0; i--) if (prev[i] !== next[i]) return false;
  return true;
}

/** The rows for `messages`. When `prev` was built with the same unread line, day function and
 * scope (e.g. the time zone the days are in) and `messages` only appends to its messages (a live
 * message arriving), the new rows are added to prev's arrays in place (prev must not be used
 * afterwards): an arriving message costs its own row, not a pass over the whole history. */
export function indexRows(prev: RowIndex | null, messages: readonly Message[], lastReadSeq: number | null, dayOf: (iso: string) => string, scope: unknown): RowIndex {
  if (prev && prev.messages === messages && prev.lastReadSeq === lastReadSeq && prev.dayOf === dayOf && prev.scope === scope) return prev;
  if (prev && prev.lastReadSeq === lastReadSeq && prev.dayOf === dayOf && prev.scope === scope && appendedTo(prev.messages, messages)) {
    const rows = prev.rows as Row[];
    const indexOf = prev.indexOf as Map<string, number>;
    const focusable = prev.focusable as boolean[];
    const from = rows.length;
    const last = prev.messages.length ? prev.messages[prev.messages.length - 1] : null;
    appendRows(rows, last, messages, prev.messages.length, lastReadSeq, dayOf);
    for (let i = from; i < rows.length; i++) {
      indexOf.set(rows[i].key, i);
      focusable.push(rows[i].kind === "message");
    }
    return { messages, lastReadSeq, dayOf, scope, rows, indexOf, focusable };
  }
  const rows = buildRows(messages, lastReadSeq, dayOf);
  return {
    messages, lastReadSeq, dayOf, scope, rows,
    indexOf: new Map(rows.map((r, i) => [r.key, i])),
    focusable: rows.map((r) => r.kind === "message"),
  };
}

/** Sidebar sections. */
export function sections(summaries: readonly ChannelSummary[]): { starred: ChannelSummary[]; channels: ChannelSummary[]; dms: ChannelSummary[] } {
  const joined = summaries.filter((s) => s.membership && !s.channel.archived_at);
  const byName = (a: ChannelSummary, b: ChannelSummary) => a.channel.name.localeCompare(b.channel.name);
  const recent = (a: ChannelSummary, b: ChannelSummary) =>
    (b.channel.last_message_at ?? b.channel.created_at).localeCompare(a.channel.last_message_at ?? a.channel.created_at);
  const starred = joined.filter((s) => s.membership?.starred).sort(byName);
  const rest = joined.filter((s) => !s.membership?.starred);
  return {
    starred,
    channels: rest.filter((s) => s.channel.kind === "public" || s.channel.kind === "private").sort(byName),
    dms: rest.filter((s) => s.channel.kind === "direct" || s.channel.kind === "group").sort(recent),
  };
}

/** The name shown for a channel: #name, or the other people's names for DMs. */
export function channelTitle(summary: ChannelSummary, me: number, users: ReadonlyMap<number, User>): string {
  const c = summary.channel;
  if (c.kind === "public" || c.kind === "private") return c.name;
  const others = (c.member_ids ?? []).filter((id) => id !== me);
  if (others.length === 0) return users.get(me)?.display_name ?? c.name;
  return others.map((id) => users.get(id)?.display_name || users.get(id)?.username || `#${id}`).join(", ");
}

/** Apply a new message to a channel summary's counters. */
export function countIncoming(summary: ChannelSummary, message: Message, me: number, viewing: boolean): ChannelSummary {
  const channel = { ...summary.channel, last_seq: Math.max(summary.channel.last_seq, message.seq), last_message_at: message.created_at };
  if (message.thread_root_id !== null) return { ...summary, channel: summary.channel };
  if (message.sender_id === me) {
    // Posting moves the sender's read marker to the message (docs/events.md).
    const membership = summary.membership ? { ...summary.membership, last_read_seq: Math.max(summary.membership.last_read_seq, message.seq) } : null;
    return { ...summary, channel, membership, unread_count: 0, mention_count: 0 };
  }
  if (viewing) return { ...summary, channel };
  const mentioned = message.mentioned_user_ids.includes(me) || message.mentions_channel || message.mentions_here;
  const dm = channel.kind === "direct" || channel.kind === "group";
  return {
    ...summary,
    channel,
    unread_count: summary.unread_count + 1,
    mention_count: summary.mention_count + (mentioned || dm ? 1 : 0),
  };
}

/** The @mention being typed at the caret, if any. */
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  const before = text.slice(0, caret);
  const match = before.match(/(?:^|[\s(])@([\p{L}\p{N}_.-]{0,32})$/u);
  if (!match) return null;
  return { start: caret - match[1].length - 1, query: match[1].toLowerCase() };
}

/** Users matching a mention or switcher query, best first. */
export function matchUsers(users: readonly User[], query: string, limit = 8): User[] {
  const q = query.toLowerCase();
  const scored: [number, User][] = [];
  for (const u of users) {
    if (u.deactivated) continue;
    const name = u.username.toLowerCase();
    const display = u.display_name.toLowerCase();
    const score = name.startsWith(q) ? 0 : display.startsWith(q) ? 1 : name.includes(q) || display.includes(q) ? 2 : -1;
    if (score >= 0) scored.push([score, u]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].username.localeCompare(b[1].username));
  return scored.slice(0, limit).map(([, u]) => u);
}

/** Filter for the quick switcher: prefix matches first, then substring. */
export function matchTitles<T>(items: readonly T[], title: (item: T) => string, query: string, limit = 10): T[] {
  const q = query.trim().replace(/^[#@]/, "").toLowerCase();
  if (!q) return items.slice(0, limit);
  const prefix: T[] = [];
  const inner: T[] = [];
  for (const item of items) {
    const name = title(item).toLowerCase();
    if (name.startsWith(q)) prefix.push(item);
    else if (name.includes(q)) inner.push(item);
  }
  return [...prefix, ...inner].slice(0, limit);
}

/** Drafts per channel (and per thread), kept in localStorage across reloads. */
export function draftKey(userId: number, channelId: number, threadRootId: number | null = null): string {
  return `courtyard.draft.${userId}.${channelId}${threadRootId ? `.t${threadRootId}` : ""}`;
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function saveDraft(store: KeyValueStore, key: string, text: string): void {
  if (text.trim()) store.setItem(key, text);
  else store.removeItem(key);
}

export function loadDraft(store: KeyValueStore, key: string): string {
  return store.getItem(key) ?? "";
}

/** A message typed but not yet confirmed by the server. */
export interface PendingSend {
  clientId: string;
  channelId: number;
  threadRootId: number | null;
  text: string;
  fileIds: number[];
  state: "sending" | "failed";
  error?: string;
}

/** Drop pending sends the server has confirmed (by client_message_id). */
export function settlePending(pending: readonly PendingSend[], confirmed: readonly Message[]): PendingSend[] {
  const done = new Set(confirmed.map((m) => m.client_message_id).filter((x): x is string => !!x));
  return done.size ? pending.filter((p) => !done.has(p.clientId)) : (pending as PendingSend[]);
}

/** Who is typing in a channel/thread now. */
export interface Typing { userId: number; channelId: number; threadRootId: number | null; until: number }

export function typingNames(typing: readonly Typing[], channelId: number, threadRootId: number | null, now: number): number[] {
  return typing.filter((x) => x.channelId === channelId && x.threadRootId === threadRootId && x.until > now).map((x) => x.userId);
}

/** Exponential back-off with jitter for reconnects, capped. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Title with the unread count. */
export function documentTitle(unread: number, channel: string | null, app = "Courtyard"): string {
  const prefix = unread > 0 ? `(${unread > 99 ? "99+" : unread}) ` : "";
  return `${prefix}${channel ? `${channel} · ` : ""}${app}`;
}

// ---- two-factor sign-in ------------------------------------------------------------------

/** What the person typed as an authenticator code: digits only (spaces and dashes dropped), at most 6. */
export function cleanTotpInput(text: string): string {
  return text.replace(/\D+/g, "").slice(0, 6);
}

/** A complete 6-digit authenticator code. */
export function isTotpCode(text: string): boolean {
  return /^\d{6}$/.test(text);
}

/** The proof to send for the second step: six digits (spaces ignored) are an authenticator code, anything
 * else a recovery code as typed (the server normalises it); the recovery mode always sends a recovery code. */
export function secondFactorBody(mode: "code" | "recovery", text: string): { code: string } | { recovery_code: string } {
  const digits = text.replace(/\s+/g, "");
  return mode === "code" && isTotpCode(digits) ? { code: digits } : { recovery_code: text.trim() };
}

/** Which message explains a refused code: [catalogue key, variables]. */
export function secondFactorError(status: number, code: string, retryAfter: number | null):
  { key: "twofa.error.wrong" | "twofa.error.tooMany" | "twofa.error.expired" | "twofa.error.format" | "twofa.error.other"; seconds: number } {
  if (status === 429) return { key: "twofa.error.tooMany", seconds: Math.max(1, Math.ceil(retryAfter ?? 60)) };
  if (code === "sign_in_expired") return { key: "twofa.error.expired", seconds: 0 };
  if (code === "invalid_code_format" || code === "one_code_required") return { key: "twofa.error.format", seconds: 0 };
  if (code === "invalid_code" || code === "reauthentication_failed" || code === "invalid_credentials") return { key: "twofa.error.wrong", seconds: 0 };
  return { key: "twofa.error.other", seconds: 0 };
}

/** The server's SVG QR code as an image URL (shown with <img>, so no script or markup of it runs in the
 * page). The server's SVG is made for inlining: as a standalone image it needs the SVG namespace, and a
 * viewBox (from its width and height) lets it scale. */
export function svgDataUrl(svg: string): string {
  const open = svg.match(/<svg\b[^>]*>/);
  let fixed = svg;
  if (open) {
    let tag = open[0];
    if (!/\sxmlns=/.test(tag)) tag = tag.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
    const w = tag.match(/\swidth="(\d+(?:\.\d+)?)"/);
    const h = tag.match(/\sheight="(\d+(?:\.\d+)?)"/);
    if (!/\sviewBox=/.test(tag) && w && h) tag = tag.replace("<svg", `<svg viewBox="0 0 ${w[1]} ${h[1]}"`);
    fixed = svg.replace(open[0], tag);
  }
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(fixed)}`;
}

/** A base32 secret in groups of four, easier to type into an authenticator app. */
export function groupSecret(secret: string): string {
  return (secret.replace(/\s+/g, "").match(/.{1,4}/g) ?? []).join(" ");
}

/** The text of a recovery-codes file: a heading line, then one code a line. */
export function recoveryCodesFile(heading: string, codes: readonly string[]): string {
  return `${heading}\n\n${codes.join("\n")}\n`;
}
