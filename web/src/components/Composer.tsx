import { Component } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { emojiQuery, matchEmoji } from "../emoji";
import { t } from "../i18n";
import { draftKey, loadDraft, matchUsers, mentionQuery, saveDraft } from "../logic";
import { me, send, sendTyping, users } from "../store";
import type { FileInfo, User } from "../types";

type Suggestion = { kind: "user"; user: User } | { kind: "emoji"; name: string; emoji: string };

interface Props { channelId: number; threadRootId: number | null; placeholder: string; disabled?: boolean; autoFocus?: boolean }

function ComposerBox({ channelId, threadRootId, placeholder, disabled, autoFocus }: Props) {
  const key = draftKey(me.value!.id, channelId, threadRootId);
  const [text, setText] = useState(() => loadDraft(localStorage, key));
  const [files, setFiles] = useState<FileInfo[]>([]);
  const [uploading, setUploading] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [suggest, setSuggest] = useState<{ start: number; items: Suggestion[]; index: number } | null>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const composing = useRef(false);

  useEffect(() => {
    setText(loadDraft(localStorage, key));
    setFiles([]);
    setSuggest(null);
    if (autoFocus) area.current?.focus();
  }, [key]);

  // Composition listeners are attached directly: Preact maps only known on* properties to
  // lower-case DOM events, and textarea has no oncompositionend property.
  const updateRef = useRef<(value: string) => void>(() => undefined);
  useEffect(() => {
    const el = area.current;
    if (!el) return;
    const start = () => { composing.current = true; };
    const end = () => { composing.current = false; updateRef.current(el.value); };
    el.addEventListener("compositionstart", start);
    el.addEventListener("compositionend", end);
    return () => {
      el.removeEventListener("compositionstart", start);
      el.removeEventListener("compositionend", end);
    };
  }, []);

  const update = (value: string) => {
    setText(value);
    saveDraft(localStorage, key, value);
    if (value) sendTyping(channelId, threadRootId);
    const caret = area.current?.selectionStart ?? value.length;
    const q = mentionQuery(value, caret);
    const e = q ? null : emojiQuery(value, caret);
    let items: Suggestion[] = [];
    if (q) {
      items = matchUsers([...users.value.values()].filter((u) => u.id !== me.value?.id), q.query, 6).map((user) => ({ kind: "user", user }));
    } else if (e) {
      items = matchEmoji(e.query).map(([name, emoji]) => ({ kind: "emoji", name, emoji }));
    }
    const start = q?.start ?? e?.start ?? 0;
    setSuggest(items.length ? { start, items, index: 0 } : null);
  };

  updateRef.current = update;

  const pick = (item: Suggestion) => {
    if (!suggest || !area.current) return;
    const caret = area.current.selectionStart;
    const inserted = item.kind === "user" ? `@${item.user.username} ` : `${item.emoji} `;
    const next = `${text.slice(0, suggest.start)}${inserted}${text.slice(caret)}`;
    update(next);
    setSuggest(null);
    const pos = suggest.start + inserted.length;
    // Only if nothing was typed since: a late frame must not pull the caret back mid-word.
    requestAnimationFrame(() => {
      if (area.current && area.current.value === next) area.current.setSelectionRange(pos, pos);
    });
  };

  // Latest values for sends that wait for an upload to finish (Enter pressed while uploading).
  const latest = useRef({ text, files });
  latest.current = { text, files };
  const sendWhenUploaded = useRef(false);
  const uploadingRef = useRef(false);
  const submitRef = useRef<() => void>(() => undefined);

  const submit = () => {
    if (disabled) return;
    if (uploadingRef.current) {
      sendWhenUploaded.current = true;
      return;
    }
    const body = latest.current.text.trim();
    const attached = latest.current.files;
    if (!body && attached.length === 0) return;
    void send(channelId, body, threadRootId, attached.map((f) => f.id));
    latest.current = { text: "", files: [] };
    setText("");
    setFiles([]);
    saveDraft(localStorage, key, "");
  };
  submitRef.current = submit;

  const onKeyDown = (e: KeyboardEvent) => {
    // IME: Enter that confirms a composition must never send (isComposing / keyCode 229).
    if (composing.current || e.isComposing || e.keyCode === 229) return;
    if (suggest) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const n = suggest.items.length;
        setSuggest({ ...suggest, index: (suggest.index + (e.key === "ArrowDown" ? 1 : n - 1)) % n });
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        pick(suggest.items[suggest.index]);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        setSuggest(null);
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.altKey) {
      e.preventDefault();
      submit();
    }
  };

  const upload = async (list: FileList | null) => {
    if (!list) return;
    setError("");
    uploadingRef.current = true;
    for (const file of Array.from(list)) {
      setUploading(file.name);
      try {
        const form = new FormData();
        form.append("file", file, file.name);
        const info = await api<FileInfo>("POST", "/files", undefined, { raw: form });
        latest.current = { ...latest.current, files: [...latest.current.files, info] };
        setFiles((prev) => [...prev, info]);
      } catch (exc) {
        sendWhenUploaded.current = false;
        setError(t("common.error", { detail: exc instanceof Error ? exc.message : String(exc) }));
      }
    }
    setUploading(null);
    uploadingRef.current = false;
    if (sendWhenUploaded.current) {
      sendWhenUploaded.current = false;
      submitRef.current();
    }
  };

  const listId = `mention-list-${threadRootId ?? channelId}`;
  return (
    <div
      class="composer"
      onDragOver={(e) => e.preventDefault()}
      onDrop={(e) => { e.preventDefault(); void upload(e.dataTransfer?.files ?? null); }}
    >
      {suggest && (
        <ul class="suggest" id={listId} role="listbox" aria-label={t("composer.suggestions")}>
          {suggest.items.map((item, i) => (
            <li key={item.kind === "user" ? `u${item.user.id}` : `e${item.name}`} id={`${listId}-${i}`} role="option" aria-selected={i === suggest.index} class={i === suggest.index ? "selected" : ""}
              onMouseDown={(e) => { e.preventDefault(); pick(item); }}>
              {item.kind === "user"
                ? <><strong>{item.user.display_name}</strong> <span class="dim">@{item.user.username}</span></>
                : <>{item.emoji} <span class="dim">:{item.name}:</span></>}
            </li>
          ))}
        </ul>
      )}
      {(files.length > 0 || uploading) && (
        <ul class="pending-files" aria-live="polite">
          {files.map((f) => (
            <li key={f.id}>📎 {f.name} <button type="button" class="link" onClick={() => setFiles(files.filter((x) => x.id !== f.id))} aria-label={`${t("msg.discard")} ${f.name}`}>×</button></li>
          ))}
          {uploading && <li>{t("composer.uploading", { name: uploading })}</li>}
        </ul>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <div class="composer-row">
        <label class="icon-button attach" title={t("composer.attach")}>
          <span aria-hidden="true">📎</span>
          <input type="file" multiple class="visually-hidden" aria-label={t("composer.attach")} disabled={disabled} onChange={(e) => { void upload(e.currentTarget.files); e.currentTarget.value = ""; }} />
        </label>
        <textarea
          ref={area}
          rows={1}
          value={text}
          placeholder={placeholder}
          aria-label={t("composer.label")}
          aria-autocomplete="list"
          aria-controls={suggest ? listId : undefined}
          aria-activedescendant={suggest ? `${listId}-${suggest.index}` : undefined}
          disabled={disabled}
          data-testid={threadRootId ? "thread-composer" : "composer"}
          onInput={(e) => update(e.currentTarget.value)}
          onKeyDown={onKeyDown}
          onBlur={() => setTimeout(() => { if (document.activeElement !== area.current) setSuggest(null); }, 150)}
          autoFocus={autoFocus}
        />
        <button type="button" class="primary send" onClick={submit} disabled={disabled} aria-label={t("composer.send")}>➤</button>
      </div>
    </div>
  );
}

/** The composer, re-rendered only when its own props change: the channel view re-renders for
 * every arriving message, and the composer's state (the draft) lives here, so a message arriving
 * never re-renders the composer and a keystroke re-renders nothing but the composer. */
export class Composer extends Component<Props> {
  shouldComponentUpdate(next: Props): boolean {
    const a = this.props;
    return a.channelId !== next.channelId || a.threadRootId !== next.threadRootId || a.placeholder !== next.placeholder ||
      a.disabled !== next.disabled || a.autoFocus !== next.autoFocus;
  }

  render() {
    return <ComposerBox {...this.props} />;
  }
}
