import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { formatDateTime, t } from "../i18n";
import { channelTitle, matchTitles, matchUsers } from "../logic";
import { renderMarkdown } from "../markdown";
import { navigate } from "../router";
import { me, refreshSummary, summaries, userName, users } from "../store";
import type { Channel, ChannelSummary, Message, MessageVersion, User } from "../types";

const EMOJI = ["👍", "👎", "❤️", "😂", "🎉", "👀", "🙏", "🔥", "✅", "❌", "😄", "😢", "😮", "🤔", "🚀", "💯", "👏", "🙌", "😅", "🤝", "⭐", "☕", "🐛", "📌"];

export function EmojiPicker({ onPick, onClose }: { onPick: (emoji: string) => void; onClose: () => void }) {
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => first.current?.focus(), []);
  return (
    <div class="emoji-picker" role="dialog" aria-label={t("emoji.title")} onKeyDown={(e) => {
      if (e.key === "Escape") { e.stopPropagation(); onClose(); return; }
      // Arrow keys move through the 6-column grid.
      const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -6, ArrowDown: 6 }[e.key];
      if (step === undefined) return;
      e.preventDefault();
      const buttons = [...e.currentTarget.querySelectorAll<HTMLButtonElement>("button")];
      const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
      buttons[Math.min(buttons.length - 1, Math.max(0, at + step))]?.focus();
    }}>
      {EMOJI.map((e, i) => (
        <button type="button" key={e} ref={i === 0 ? first : undefined} class="icon-button" aria-label={e} onClick={() => onPick(e)}>{e}</button>
      ))}
    </div>
  );
}

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    const focusable = box.current?.querySelector<HTMLElement>("input, textarea, select, button:not(.close)");
    (focusable ?? box.current)?.focus();
    return () => previous?.focus?.();
  }, []);
  return (
    <div class="backdrop" onMouseDown={(e) => { if (e.target === e.currentTarget) onClose(); }}>
      <div class="modal" role="dialog" aria-modal="true" aria-label={title} ref={box} tabIndex={-1}
        onKeyDown={(e) => { if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); onClose(); } }}>
        <header><h2>{title}</h2><button type="button" class="icon-button close" aria-label={t("common.close")} onClick={onClose}>×</button></header>
        {children}
      </div>
    </div>
  );
}

export function Switcher({ onClose }: { onClose: () => void }) {
  const [q, setQ] = useState("");
  const [index, setIndex] = useState(0);
  const my = me.value!.id;
  const joined = [...summaries.value.values()].filter((s) => s.membership && !s.channel.archived_at);
  const channels = matchTitles(joined, (s) => channelTitle(s, my, users.value), q, 8);
  const people = q ? matchUsers([...users.value.values()].filter((u) => u.id !== my && !u.is_bot), q.replace(/^@/, ""), 5) : [];
  const items: ({ kind: "channel"; s: ChannelSummary } | { kind: "user"; u: User })[] = [
    ...channels.map((s) => ({ kind: "channel" as const, s })),
    ...people.map((u) => ({ kind: "user" as const, u })),
  ];
  const choose = async (i: number) => {
    const item = items[i];
    if (!item) return;
    onClose();
    if (item.kind === "channel") navigate(`/c/${item.s.channel.id}`);
    else await openDm([item.u.id]);
  };
  return (
    <Modal title={t("switcher.title")} onClose={onClose}>
      <input
        class="switcher-input"
        role="combobox"
        aria-expanded="true"
        aria-controls="switcher-list"
        aria-activedescendant={items.length ? `switcher-${index}` : undefined}
        placeholder={t("switcher.placeholder")}
        aria-label={t("switcher.placeholder")}
        value={q}
        onInput={(e) => { setQ(e.currentTarget.value); setIndex(0); }}
        onKeyDown={(e) => {
          if (e.isComposing) return;
          if (e.key === "ArrowDown") { e.preventDefault(); setIndex((index + 1) % Math.max(items.length, 1)); }
          if (e.key === "ArrowUp") { e.preventDefault(); setIndex((index - 1 + items.length) % Math.max(items.length, 1)); }
          if (e.key === "Enter") { e.preventDefault(); void choose(index); }
        }}
      />
      <ul id="switcher-list" role="listbox" class="switcher-list">
        {items.length === 0 && <li class="dim">{t("switcher.none")}</li>}
        {items.map((item, i) => (
          <li key={item.kind === "channel" ? `c${item.s.channel.id}` : `u${item.u.id}`} id={`switcher-${i}`} role="option"
            aria-selected={i === index} class={i === index ? "selected" : ""} onMouseDown={(e) => { e.preventDefault(); void choose(i); }}>
            {item.kind === "channel"
              ? <>{item.s.channel.kind === "public" ? "# " : item.s.channel.kind === "private" ? "🔒 " : "@ "}{channelTitle(item.s, my, users.value)}</>
              : <>@ {item.u.display_name} <span class="dim">{item.u.username}</span></>}
          </li>
        ))}
      </ul>
    </Modal>
  );
}

export async function openDm(userIds: number[]): Promise<void> {
  const channel = await api<Channel>("POST", "/conversations", { user_ids: userIds });
  await refreshSummary(channel.id);
  navigate(`/c/${channel.id}`);
}

export function HistoryDialog({ m, onClose }: { m: Message; onClose: () => void }) {
  const [versions, setVersions] = useState<MessageVersion[] | null>(null);
  useEffect(() => {
    api<{ versions: MessageVersion[] }>("GET", `/messages/${m.id}/versions`).then((r) => setVersions(r.versions)).catch(() => setVersions([]));
  }, [m.id]);
  return (
    <Modal title={t("history.title")} onClose={onClose}>
      {versions === null ? <p>{t("common.loading")}</p> : (
        <ol class="versions">
          {versions.map((v) => (
            <li key={v.version}>
              <div class="dim">{formatDateTime(v.edited_at)} · {userName(v.editor_id)}</div>
              <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(v.text) }} />
            </li>
          ))}
        </ol>
      )}
    </Modal>
  );
}

export function NewChannelDialog({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState("");
  const [topic, setTopic] = useState("");
  const [priv, setPriv] = useState(false);
  const [error, setError] = useState("");
  const [browse, setBrowse] = useState<Channel[]>([]);
  useEffect(() => {
    api<{ channels: Channel[] }>("GET", "/channels/browse?limit=200").then((r) => setBrowse(r.channels)).catch(() => undefined);
  }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const c = await api<Channel>("POST", "/channels", { name, topic, private: priv });
      await refreshSummary(c.id);
      onClose();
      navigate(`/c/${c.id}`);
    } catch (exc) {
      setError(exc instanceof Error ? exc.message : String(exc));
    }
  };
  const notJoined = browse.filter((c) => !summaries.value.get(c.id)?.membership);
  return (
    <Modal title={t("sidebar.newChannel")} onClose={onClose}>
      <form onSubmit={create} class="stack">
        <label>{t("channel.name")}<input value={name} onInput={(e) => setName(e.currentTarget.value)} required /></label>
        <label>{t("channel.topic")}<input value={topic} onInput={(e) => setTopic(e.currentTarget.value)} /></label>
        <label class="row"><input type="checkbox" checked={priv} onChange={(e) => setPriv(e.currentTarget.checked)} />{t("channel.private")}</label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary">{t("channel.create")}</button>
      </form>
      {notJoined.length > 0 && (
        <section aria-label={t("sidebar.browse")}>
          <h3>{t("sidebar.browse")}</h3>
          <ul class="browse-list">
            {notJoined.map((c) => (
              <li key={c.id}>
                <span># {c.name} <span class="dim">{c.topic}</span></span>
                <button type="button" onClick={() => { onClose(); navigate(`/c/${c.id}`); }}>{t("channel.join")}</button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </Modal>
  );
}

export function NewDmDialog({ onClose }: { onClose: () => void }) {
  const [q, setQ] = useState("");
  const [picked, setPicked] = useState<User[]>([]);
  const my = me.value!.id;
  const found = matchUsers([...users.value.values()].filter((u) => u.id !== my && !picked.includes(u)), q, 8);
  return (
    <Modal title={t("sidebar.newDm")} onClose={onClose}>
      <div class="stack">
        <label>{t("dm.pick")}<input value={q} onInput={(e) => setQ(e.currentTarget.value)} /></label>
        {picked.length > 0 && <p>{picked.map((u) => u.display_name).join(", ")}</p>}
        <ul class="browse-list">
          {found.map((u) => (
            <li key={u.id}><span>{u.display_name} <span class="dim">@{u.username}</span></span>
              <button type="button" onClick={() => setPicked([...picked, u])}>＋</button></li>
          ))}
        </ul>
        <button type="button" class="primary" disabled={picked.length === 0} onClick={() => { onClose(); void openDm(picked.map((u) => u.id)); }}>{t("dm.start")}</button>
      </div>
    </Modal>
  );
}
