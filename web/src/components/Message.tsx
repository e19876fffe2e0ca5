import { Component } from "preact";
import { useState } from "preact/hooks";
import { formatDateTime, formatTime, t } from "../i18n";
import { renderMarkdown } from "../markdown";
import { deleteMessage, editMessage, me, openThread, setPinned, toggleReaction, userName } from "../store";
import type { Message } from "../types";
import { EmojiPicker } from "./Overlays";

export const QUICK_EMOJI = ["👍", "❤️", "😂", "🎉", "👀", "🙏"];

export function MessageBody({ m }: { m: Message }) {
  if (m.deleted_at) return <p class="deleted">{t("msg.deleted")}</p>;
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(m.text) }} />;
}

export function Attachments({ m }: { m: Message }) {
  if (!m.attachments?.length || m.deleted_at) return null;
  return (
    <ul class="attachments">
      {m.attachments.map((a) => (
        <li key={a.id}>
          {a.has_thumbnail ? (
            <a href={`/api/v1/files/${a.id}/content`} target="_blank" rel="noopener">
              <img src={`/api/v1/files/${a.id}/thumbnail`} alt={a.name} width={a.width ?? undefined} height={a.height ?? undefined} loading="lazy" class="thumb" />
            </a>
          ) : null}
          <a href={`/api/v1/files/${a.id}/content?download=true`} class="file-link">📎 {a.name} <span class="dim">({Math.ceil(a.size / 1024)} KB)</span></a>
        </li>
      ))}
    </ul>
  );
}

interface Props { m: Message; grouped: boolean; inThread?: boolean; highlighted?: boolean; seenBy?: string[]; onHistory: (m: Message) => void }

export function MessageItem({ m, grouped, inThread, highlighted, seenBy, onHistory }: Props) {
  const mine = m.sender_id === me.value?.id;
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(m.text);
  const [picker, setPicker] = useState(false);
  // The toolbar exists only while the message is hovered or has focus: long lists stay light.
  const [hovered, setHovered] = useState(false);
  const [focused, setFocused] = useState(false);
  const active = hovered || focused;
  const [error, setError] = useState("");
  const run = (p: Promise<unknown>) => p.catch((exc) => setError(t("common.error", { detail: exc instanceof Error ? exc.message : String(exc) })));

  const saveEdit = () => {
    if (draft.trim() && draft !== m.text) void run(editMessage(m, draft.trim()));
    setEditing(false);
  };
  const copyLink = () => {
    void navigator.clipboard?.writeText(`${location.origin}/c/${m.channel_id}/m/${m.id}`);
  };
  const my = me.value?.id ?? -1;
  return (
    <article
      class={`message${grouped ? " grouped" : ""}${highlighted ? " highlighted" : ""}${m.pinned_at ? " pinned" : ""}${m.mentioned_user_ids.includes(my) ? " mentions-me" : ""}`}
      data-message-id={m.id}
      aria-labelledby={`m-${m.id}-meta`}
      tabIndex={0}
      onMouseOver={() => { if (!hovered) setHovered(true); }}
      onMouseLeave={() => setHovered(false)}
      onFocusIn={() => setFocused(true)}
      onFocusOut={(e) => { if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setFocused(false); }}
    >
      <div class="message-meta" id={`m-${m.id}-meta`}>
        {!grouped && <strong class="sender">{userName(m.sender_id)}</strong>}
        <time dateTime={m.created_at} title={formatDateTime(m.created_at)}>{formatTime(m.created_at)}</time>
        {m.pinned_at && <span class="tag">📌 {t("msg.pinned")}</span>}
      </div>
      {editing ? (
        <div class="edit-box">
          <textarea
            aria-label={t("msg.edit")}
            value={draft}
            autoFocus
            onInput={(e) => setDraft(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.isComposing || e.keyCode === 229) return;
              if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); saveEdit(); }
              if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); setEditing(false); }
            }}
          />
          <button type="button" class="primary" onClick={saveEdit}>{t("msg.save")}</button>
          <button type="button" onClick={() => setEditing(false)}>{t("msg.cancel")}</button>
        </div>
      ) : (
        <>
          <MessageBody m={m} />
          {m.edited_at && !m.deleted_at && (mine || me.value?.role === "owner" || me.value?.role === "admin" ? (
            <button type="button" class="link edited" onClick={() => onHistory(m)} title={t("msg.history")}>{t("msg.edited")}</button>
          ) : <span class="edited">{t("msg.edited")}</span>)}
        </>
      )}
      <Attachments m={m} />
      {m.reactions.length > 0 && (
        <div class="reactions" role="group" aria-label={t("msg.react")}>
          {m.reactions.map((r) => (
            <button
              type="button"
              key={r.emoji}
              class={`reaction${r.user_ids.includes(my) ? " mine" : ""}`}
              aria-pressed={r.user_ids.includes(my)}
              title={r.user_ids.map(userName).join(", ")}
              onClick={() => void run(toggleReaction(m, r.emoji))}
            >
              {r.emoji} <span class="count">{r.count}</span>
            </button>
          ))}
        </div>
      )}
      {!inThread && m.reply_count > 0 && (
        <button type="button" class="link replies" onClick={() => void openThread(m.id)}>
          {m.reply_count === 1 ? t("msg.reply1") : t("msg.replies", { count: m.reply_count })}
        </button>
      )}
      {seenBy && seenBy.length > 0 && <p class="seen-by dim">{t("msg.seenBy", { names: seenBy.join(", ") })}</p>}
      {error && <p class="error" role="alert">{error}</p>}
      {!m.deleted_at && !editing && (active || picker) && (
        <div class="message-actions" role="toolbar" aria-label={userName(m.sender_id)}>
          {QUICK_EMOJI.slice(0, 3).map((e) => (
            <button type="button" class="icon-button" key={e} aria-label={`${t("msg.react")} ${e}`} onClick={() => void run(toggleReaction(m, e))}>{e}</button>
          ))}
          <button type="button" class="icon-button" aria-label={t("msg.react")} title={t("msg.react")} aria-expanded={picker} onClick={() => setPicker(!picker)}>☺</button>
          {!inThread && m.thread_root_id === null && (
            <button type="button" class="icon-button" aria-label={t("msg.reply")} title={t("msg.reply")} onClick={() => void openThread(m.id)}>💬</button>
          )}
          <button type="button" class="icon-button" aria-label={m.pinned_at ? t("msg.unpin") : t("msg.pin")} title={m.pinned_at ? t("msg.unpin") : t("msg.pin")} onClick={() => void run(setPinned(m, !m.pinned_at))}>📌</button>
          <button type="button" class="icon-button" aria-label={t("msg.copyLink")} title={t("msg.copyLink")} onClick={copyLink}>🔗</button>
          {mine && (
            <>
              <button type="button" class="icon-button" aria-label={t("msg.edit")} title={t("msg.edit")} onClick={() => { setDraft(m.text); setEditing(true); }}>✏️</button>
              <button type="button" class="icon-button" aria-label={t("msg.delete")} title={t("msg.delete")} onClick={() => { if (confirm(t("msg.deleteConfirm"))) void run(deleteMessage(m)); }}>🗑️</button>
            </>
          )}
          {picker && <EmojiPicker onPick={(e) => { setPicker(false); void run(toggleReaction(m, e)); }} onClose={() => setPicker(false)} />}
        </div>
      )}
    </article>
  );
}

/** MessageItem that re-renders only when its own props change (long lists stay cheap to update). */
export class MemoMessage extends Component<Props> {
  shouldComponentUpdate(next: Props): boolean {
    const a = this.props as unknown as Record<string, unknown>;
    const b = next as unknown as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (key === "seenBy") {
        if ((a.seenBy as string[] | undefined)?.join("\u0000") !== (b.seenBy as string[] | undefined)?.join("\u0000")) return true;
      } else if (a[key] !== b[key]) return true;
    }
    return false;
  }

  render() {
    return <MessageItem {...this.props} />;
  }
}
