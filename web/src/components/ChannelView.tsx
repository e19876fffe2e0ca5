import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { t } from "../i18n";
import { channelTitle, typingNames } from "../logic";
import {
  channelMessages, discardSend, highlightMessageId, joinChannel, loadAround, loadLatest,
  markRead, me, now, openThread, openThreadId, pending, receipts, retrySend, setPreference, summaries, threads, updateTopic, loadReceipts,
  typing, userName, users,
} from "../store";
import type { ChannelSummary, Message } from "../types";
import { Composer } from "./Composer";
import { MessageItem } from "./Message";
import { type ListControl, MessageList } from "./MessageList";
import { HistoryDialog } from "./Overlays";

function PendingList({ channelId, threadRootId }: { channelId: number; threadRootId: number | null }) {
  const mine = pending.value.filter((p) => p.channelId === channelId && p.threadRootId === threadRootId);
  if (mine.length === 0) return null;
  return (
    <ul class="pending-sends" aria-live="polite">
      {mine.map((p) => (
        <li key={p.clientId} class={`pending ${p.state}`} data-state={p.state}>
          <span class="pending-text">{p.text}</span>
          {p.state === "sending" ? <span class="dim"> {t("msg.sending")}</span> : (
            <span class="failed-actions" role="alert">
              {t("msg.failed")}
              <button type="button" class="link" onClick={() => void retrySend(p.clientId)}>{t("msg.retry")}</button>
              <button type="button" class="link" onClick={() => discardSend(p.clientId)}>{t("msg.discard")}</button>
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}

function TypingLine({ channelId, threadRootId }: { channelId: number; threadRootId: number | null }) {
  const ids = typingNames(typing.value, channelId, threadRootId, now.value).filter((id) => id !== me.value?.id);
  return (
    <div class="typing" aria-live="polite">
      {ids.length === 1 ? t("typing.one", { name: userName(ids[0]) }) : ids.length > 1 ? t("typing.many") : " "}
    </div>
  );
}

function latestOwn(list: Message[]): Message | undefined {
  const my = me.value?.id;
  for (let i = list.length - 1; i >= 0; i--) if (list[i].sender_id === my && !list[i].deleted_at) return list[i];
  return undefined;
}

function seenByFor(s: ChannelSummary, list: Message[]): Map<number, string[]> {
  // "Seen by" on the latest own message others have read (small channels keep receipts).
  const out = new Map<number, string[]>();
  const per = receipts.value.get(s.channel.id);
  const my = me.value?.id;
  const lastMine = latestOwn(list);
  if (!lastMine || !per) return out;
  const names = [...per.entries()].filter(([uid, seq]) => uid !== my && seq >= lastMine.seq).map(([uid]) => userName(uid));
  if (names.length) out.set(lastMine.id, names);
  return out;
}

export function ChannelView({ channelId, messageId }: { channelId: number; messageId: number | null }) {
  const s = summaries.value.get(channelId);
  const cm = channelMessages.value.get(channelId);
  const control = useRef<ListControl>({ stick: true, anchor: null }).current;
  const [history, setHistory] = useState<Message | null>(null);
  const [showPins, setShowPins] = useState(false);
  const [error, setError] = useState("");
  const lastRead = useRef<number | null>(null);

  useEffect(() => {
    control.stick = true;
    control.anchor = null;
    setShowPins(false);
    lastRead.current = summaries.value.get(channelId)?.membership?.last_read_seq ?? null;
    const load = async () => {
      try {
        if (messageId !== null) {
          const m = await api<Message>("GET", `/messages/${messageId}`);
          if (m.thread_root_id !== null) {
            await loadLatest(channelId);
            void openThread(m.thread_root_id);
          } else {
            // The linked message a third of the way down the viewport, with what came before it above.
            control.stick = false;
            control.anchor = { key: `m-${m.id}`, delta: -Math.round(window.innerHeight / 3) };
            await loadAround(channelId, m.seq);
          }
          highlightMessageId.value = m.id;
        } else if (!channelMessages.value.get(channelId) || channelMessages.value.get(channelId)!.hasMoreAfter) {
          await loadLatest(channelId);
        }
        void markRead(channelId);
      } catch (exc) {
        setError(exc instanceof Error ? exc.message : String(exc));
      }
    };
    setError("");
    void load();
  }, [channelId, messageId]);

  // The latest own message may have come from history: ask who read it before it was loaded.
  const ownLatest = cm ? latestOwn(cm.list) : undefined;
  useEffect(() => {
    if (ownLatest) void loadReceipts(ownLatest);
  }, [ownLatest?.id]);

  if (!s) {
    return <main class="channel-view" aria-busy="true"><p class="empty">{error || t("common.loading")}</p></main>;
  }
  const my = me.value!.id;
  const title = channelTitle(s, my, users.value);
  const isChannel = s.channel.kind === "public" || s.channel.kind === "private";
  const seen = cm ? seenByFor(s, cm.list) : new Map<number, string[]>();
  const member = !!s.membership;
  const threadRoot = openThreadId.value;
  return (
    <div class={`channel-layout${threadRoot !== null || showPins ? " with-panel" : ""}`}>
      <main class="channel-view" aria-label={isChannel ? `#${title}` : title}>
        <ChannelHeader s={s} title={title} isChannel={isChannel} showPins={showPins} onPins={() => { openThreadId.value = null; setShowPins(!showPins); }} />
        {cm && lastRead.current !== null && cm.hasMoreBefore && cm.list.length > 0 && cm.list[0].seq > lastRead.current + 1 && (
          <button type="button" class="jump-unread" onClick={() => {
            control.stick = false;
            control.anchor = { key: "unread", delta: 0 };
            void loadAround(channelId, lastRead.current! + 1);
          }}>{t("msg.jumpUnread")}</button>
        )}
        <MessageList
          channelId={channelId}
          cm={cm}
          lastRead={lastRead.current}
          seen={seen}
          control={control}
          label={t("msg.list", { channel: title })}
          onHistory={setHistory}
          before={<>
            {cm && !cm.hasMoreBefore && <p class="beginning">{t("msg.beginning", { channel: isChannel ? `#${title}` : title })}</p>}
            {cm?.loading && <p class="dim loading-older">{t("msg.loadOlder")}</p>}
            {error && <p class="error" role="alert">{error}</p>}
          </>}
          after={<PendingList channelId={channelId} threadRootId={null} />}
        />
        <TypingLine channelId={channelId} threadRootId={null} />
        {member ? (
          s.channel.archived_at ? null : <Composer channelId={channelId} threadRootId={null} placeholder={t("composer.placeholder", { channel: isChannel ? `#${title}` : title })} autoFocus />
        ) : (
          <div class="join-bar"><span>{t("channel.joinToPost", { channel: `#${title}` })}</span><button type="button" class="primary" onClick={() => void joinChannel(channelId).then(() => loadLatest(channelId))}>{t("channel.join")}</button></div>
        )}
      </main>
      {threadRoot !== null && <ThreadPanel rootId={threadRoot} onHistory={setHistory} />}
      {showPins && threadRoot === null && <PinsPanel channelId={channelId} onClose={() => setShowPins(false)} onHistory={setHistory} />}
      {history && <HistoryDialog m={history} onClose={() => setHistory(null)} />}
    </div>
  );
}

/** Who may change a topic (the server's rule, services/channels.py): administrators, and members
 * who are not guests, while the channel is not archived. */
function mayEditTopic(s: ChannelSummary): boolean {
  const role = me.value?.role;
  if (s.channel.archived_at) return false;
  return role === "owner" || role === "admin" || (!!s.membership && role !== "guest");
}

function TopicEditor({ s, onDone }: { s: ChannelSummary; onDone: () => void }) {
  const [text, setText] = useState(s.channel.topic);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await updateTopic(s.channel.id, text.trim());
      onDone();
    } catch (exc) {
      setError(t("common.error", { detail: exc instanceof Error ? exc.message : String(exc) }));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="topic-editor" onSubmit={save} onKeyDown={(e) => { if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); onDone(); } }}>
      <input aria-label={t("channel.topic")} value={text} maxLength={250} autoFocus onInput={(e) => setText(e.currentTarget.value)} />
      <button type="submit" class="primary" disabled={busy}>{t("msg.save")}</button>
      <button type="button" onClick={onDone}>{t("msg.cancel")}</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}

function ChannelHeader({ s, title, isChannel, showPins, onPins }: { s: ChannelSummary; title: string; isChannel: boolean; showPins: boolean; onPins: () => void }) {
  const channelId = s.channel.id;
  const member = !!s.membership;
  const [editing, setEditing] = useState(false);
  const editable = mayEditTopic(s);
  useEffect(() => setEditing(false), [channelId]);
  return (
    <header class="channel-header">
      <h1>{isChannel ? (s.channel.kind === "private" ? "🔒 " : "# ") : ""}{title}</h1>
      {editing ? <TopicEditor s={s} onDone={() => setEditing(false)} /> : (
        <>
          {/* The topic is someone's text: rendered as text, never as markup. */}
          {s.channel.topic && <p class="topic" title={s.channel.topic} data-testid="topic">{s.channel.topic}</p>}
          {editable && (
            <button type="button" class="link topic-edit" onClick={() => setEditing(true)}>{s.channel.topic ? t("channel.editTopic") : t("channel.addTopic")}</button>
          )}
        </>
      )}
      <div class="header-actions">
        <span class="dim">{t("channel.members", { count: s.channel.member_count })}</span>
        {member && (
          <>
            <button type="button" class="icon-button" aria-pressed={s.membership!.starred} aria-label={s.membership!.starred ? t("channel.unstar") : t("channel.star")} title={s.membership!.starred ? t("channel.unstar") : t("channel.star")} onClick={() => void setPreference(channelId, { starred: !s.membership!.starred })}>{s.membership!.starred ? "★" : "☆"}</button>
            <button type="button" class="icon-button" aria-pressed={s.membership!.muted} aria-label={s.membership!.muted ? t("channel.unmute") : t("channel.mute")} title={s.membership!.muted ? t("channel.unmute") : t("channel.mute")} onClick={() => void setPreference(channelId, { muted: !s.membership!.muted })}>{s.membership!.muted ? "🔕" : "🔔"}</button>
          </>
        )}
        <button type="button" class="icon-button" aria-pressed={showPins} aria-label={t("pins.title")} title={t("pins.title")} onClick={onPins}>📌</button>
      </div>
    </header>
  );
}

function ThreadPanel({ rootId, onHistory }: { rootId: number; onHistory: (m: Message) => void }) {
  const th = threads.value.get(rootId);
  const list = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    if (list.current) list.current.scrollTop = list.current.scrollHeight;
  }, [th?.replies.length]);
  const close = () => {
    openThreadId.value = null;
    (document.querySelector('[data-testid="composer"]') as HTMLElement | null)?.focus();
  };
  return (
    <aside class="side-panel" aria-label={t("thread.title")} onKeyDown={(e) => { if (e.key === "Escape") { e.preventDefault(); close(); } }}>
      <header><h2>{t("thread.title")}</h2><button type="button" class="icon-button" aria-label={t("thread.close")} onClick={close}>×</button></header>
      <div class="panel-body" ref={list}>
        {th ? (
          <>
            <MessageItem m={th.root} grouped={false} inThread onHistory={onHistory} />
            <div class="thread-count dim">{th.root.reply_count === 1 ? t("msg.reply1") : t("msg.replies", { count: th.root.reply_count })}</div>
            {th.replies.map((m, i) => (
              <MessageItem key={m.id} m={m} inThread grouped={i > 0 && th.replies[i - 1].sender_id === m.sender_id} onHistory={onHistory} />
            ))}
            <PendingList channelId={th.root.channel_id} threadRootId={rootId} />
          </>
        ) : <p class="dim">{t("common.loading")}</p>}
      </div>
      {th && <TypingLine channelId={th.root.channel_id} threadRootId={rootId} />}
      {th && <Composer channelId={th.root.channel_id} threadRootId={rootId} placeholder={t("composer.replyPlaceholder")} autoFocus />}
    </aside>
  );
}

function PinsPanel({ channelId, onClose, onHistory }: { channelId: number; onClose: () => void; onHistory: (m: Message) => void }) {
  const [pins, setPins] = useState<Message[] | null>(null);
  useEffect(() => {
    api<{ messages: Message[] }>("GET", `/channels/${channelId}/pins`).then((r) => setPins(r.messages)).catch(() => setPins([]));
  }, [channelId]);
  return (
    <aside class="side-panel" aria-label={t("pins.title")} onKeyDown={(e) => { if (e.key === "Escape") { e.preventDefault(); onClose(); } }}>
      <header><h2>{t("pins.title")}</h2><button type="button" class="icon-button" aria-label={t("common.close")} onClick={onClose}>×</button></header>
      <div class="panel-body">
        {pins === null ? <p class="dim">{t("common.loading")}</p> : pins.length === 0 ? <p class="dim">{t("pins.none")}</p> :
          pins.map((m) => <MessageItem key={m.id} m={m} grouped={false} inThread onHistory={onHistory} />)}
      </div>
    </aside>
  );
}
