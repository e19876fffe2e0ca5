// The channel's message list, windowed: every loaded message stays in memory, but only the rows
// near the viewport are in the DOM; spacers stand in for the rest (arithmetic: ../windowing.ts).
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { dayKey, formatDay, t, timeZone } from "../i18n";
import { indexRows, type Row, type RowIndex } from "../logic";
import { highlightMessageId, loadNewer, loadOlder, markRead, pending } from "../store";
import type { ChannelMessages } from "../store";
import type { Message } from "../types";
import {
  type Anchor, type Range, anchorFromOffsets, atBottom, computeOffsets, covers, offsetsFrom, nextFocusable, pickAnchor, rowHeights,
  segments, spans, visibleRange, withKept,
} from "../windowing";
import { MemoMessage } from "./Message";

/** What the channel view asks of the list: stay at the bottom, or keep a row at a place. */
export interface ListControl { stick: boolean; anchor: Anchor | null }

// Rendered beyond the viewport on each side; a re-render happens when the viewport comes within
// RERANGE_PX of the rendered rows' edge. Re-ranging early mounts a few rows at a time while
// scrolling fast (a late re-range mounts a screenful in one frame: a long task).
const OVERSCAN_PX = 800;
const RERANGE_PX = 600;
const LOAD_MORE_PX = 600;

// Heights of rows by key, kept across channel switches (message keys are unique; day and
// unread separators have the same height everywhere).
const measured = new Map<string, number>();

// Estimates by message object (messages are replaced, never mutated, when they change): a
// layout from scratch estimates every unmeasured row of the history.
const estimates = new WeakMap<Message, number>();

function estimate(row: Row): number {
  if (row.kind !== "message") return 40;
  const known = estimates.get(row.message);
  if (known !== undefined) return known + (row.grouped ? 8 : 30);
  const lines = Math.min(20, Math.ceil(row.message.text.length / 90) + (row.message.text.match(/\n/g)?.length ?? 0));
  const body = 20 * Math.max(1, lines) + (row.message.reactions.length ? 30 : 0) + (row.message.reply_count ? 24 : 0);
  estimates.set(row.message, body);
  return body + (row.grouped ? 8 : 30);
}

const rowKey = (row: Row) => row.key;
const NO_MESSAGES: readonly Message[] = [];

interface Layout { rows: readonly Row[]; count: number; version: number; offsets: Float64Array }

// The lowest row whose measured height changed since the last layout (Infinity: none).
let dirtyFrom = Infinity;

/** The rows' offsets: when only rows were appended or rows near the end were measured since the
 * last layout, recomputed from the first changed row on; else from scratch. */
function layoutRows(prev: Layout | null, rows: readonly Row[], version: number): Layout {
  if (prev && prev.rows === rows && prev.version === version && prev.count === rows.length) return prev;
  if (prev && prev.rows === rows && prev.count <= rows.length) {
    const from = Math.min(prev.count, dirtyFrom);
    dirtyFrom = Infinity;
    return { rows, count: rows.length, version, offsets: offsetsFrom(prev.offsets, from, rowHeights(rows.slice(from), rowKey, measured, estimate)) };
  }
  dirtyFrom = Infinity;
  return { rows, count: rows.length, version, offsets: computeOffsets(rowHeights(rows, rowKey, measured, estimate)) };
}

// A day separator's key is its day, and it moves to the first loaded message of that day when
// older ones are prepended: never an anchor.
const stableKey = (key: string) => !key.startsWith("day-");

interface Props {
  channelId: number;
  cm: ChannelMessages | undefined;
  lastRead: number | null;
  seen: Map<number, string[]>;
  control: ListControl;
  label: string;
  before: ComponentChildren;
  after: ComponentChildren;
  onHistory: (m: Message) => void;
}

export function MessageList({ channelId, cm, lastRead, seen, control, label, before, after, onHistory }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: typeof window === "undefined" ? 800 : window.innerHeight });
  const [version, setVersion] = useState(0);
  const rendered = useRef<Range>({ start: 0, end: 0 });
  const focusedKey = useRef<string | null>(null);
  const focusNext = useRef<string | null>(null);
  const zone = timeZone.value;
  void pending.value.length; // a new pending send re-renders, which keeps the list at the bottom

  const list = cm?.list;
  // Extended in place when messages arrive (a rebuild over 10,000 loaded messages per arriving
  // one delayed keystrokes in the composer).
  const index = useRef<RowIndex | null>(null);
  index.current = indexRows(index.current, list ?? NO_MESSAGES, lastRead, dayKey, zone);
  const { rows, indexOf, focusable } = index.current;
  const indexNow = useRef(indexOf);
  indexNow.current = indexOf;
  const layout = useRef<Layout | null>(null);
  const offsets = (layout.current = layoutRows(layout.current, rows, version)).offsets;
  const total = offsets[rows.length];

  // Where the viewport is (rows-container pixels): at the bottom, at the anchor, or as scrolled.
  let top = view.top;
  const anchorIndex = control.anchor ? indexOf.get(control.anchor.key) ?? -1 : -1;
  if (control.stick) top = Math.max(0, total - view.height);
  else if (control.anchor && anchorIndex >= 0) top = Math.max(0, offsets[anchorIndex] + control.anchor.delta);
  const range = visibleRange(offsets, top, view.height, OVERSCAN_PX);
  rendered.current = range;
  // The anchor row is always rendered: placing the viewport reads its position from the DOM.
  const kept: number[] = anchorIndex >= 0 && !control.stick ? [anchorIndex] : [];
  for (const key of [focusedKey.current, focusNext.current, highlightMessageId.value !== null ? `m-${highlightMessageId.value}` : null]) {
    const i = key ? indexOf.get(key) : undefined;
    if (i !== undefined) kept.push(i);
  }
  const segs = segments(offsets, withKept(range, kept));

  // Put the viewport where the control asks, from the rendered rows' real positions.
  const place = () => {
    const el = scroller.current;
    const rowsBox = box.current;
    if (!el || !rowsBox) return;
    if (control.stick) {
      el.scrollTop = el.scrollHeight;
      return;
    }
    const a = control.anchor;
    if (!a) return;
    const row = rowsBox.querySelector<HTMLElement>(`:scope > [data-key="${CSS.escape(a.key)}"]`);
    if (!row) return;
    const want = Math.max(0, rowsBox.offsetTop + row.offsetTop + a.delta);
    if (Math.abs(el.scrollTop - want) >= 1) el.scrollTop = want;
  };

  // Measure what was rendered; if a height differs from what the layout assumed, lay out again
  // (before the frame is painted) — the anchor keeps the visible rows where they were.
  useLayoutEffect(() => {
    const rowsBox = box.current;
    if (!rowsBox) return;
    let changed = false;
    for (const child of rowsBox.children) {
      const key = (child as HTMLElement).dataset.key;
      if (!key) continue;
      const h = (child as HTMLElement).offsetHeight;
      if (measured.get(key) !== h) {
        measured.set(key, h);
        dirtyFrom = Math.min(dirtyFrom, indexOf.get(key) ?? 0);
        changed = true;
      }
      observer.current?.observe(child);
    }
    place();
    loadNearEdges();
    if (focusNext.current) {
      const row = rowsBox.querySelector<HTMLElement>(`:scope > [data-key="${CSS.escape(focusNext.current)}"] article`);
      focusNext.current = null;
      row?.focus();
    }
    if (changed) setVersion((v) => v + 1);
  });

  // Later height changes (images, reactions, edits, a narrower window) and the viewport's size.
  const observer = useRef<ResizeObserver | null>(null);
  useEffect(() => {
    let frame = 0;
    const rowsObserver = new ResizeObserver((entries) => {
      let changed = false;
      for (const entry of entries) {
        const el = entry.target as HTMLElement;
        const key = el.dataset.key;
        if (!key || !el.isConnected) {
          rowsObserver.unobserve(el);
          continue;
        }
        const h = el.offsetHeight;
        if (measured.get(key) !== h) {
          measured.set(key, h);
          dirtyFrom = Math.min(dirtyFrom, indexNow.current.get(key) ?? 0);
          changed = true;
        }
      }
      // Re-laid out on the next frame: changing the DOM inside the observer's callback loops.
      if (changed && !frame) frame = requestAnimationFrame(() => { frame = 0; setVersion((v) => v + 1); });
    });
    observer.current = rowsObserver;
    const viewport = new ResizeObserver(() => {
      const el = scroller.current;
      if (!el) return;
      if (control.stick) el.scrollTop = el.scrollHeight;
      setView((v) => (v.height === el.clientHeight ? v : { ...v, height: el.clientHeight }));
    });
    if (scroller.current) viewport.observe(scroller.current);
    return () => {
      cancelAnimationFrame(frame);
      rowsObserver.disconnect();
      viewport.disconnect();
      observer.current = null;
    };
  }, []);

  const onScroll = () => {
    const el = scroller.current;
    const rowsBox = box.current;
    if (!el || !rowsBox || !cm) return;
    control.stick = atBottom(el.scrollHeight, el.scrollTop, el.clientHeight);
    const base = rowsBox.offsetTop;
    const placed = [];
    for (const child of rowsBox.children) {
      const key = (child as HTMLElement).dataset.key;
      if (key) placed.push({ key, top: base + (child as HTMLElement).offsetTop, height: (child as HTMLElement).offsetHeight });
    }
    const relTop = el.scrollTop - base;
    if (spans(placed, el.scrollTop)) control.anchor = pickAnchor(placed, el.scrollTop, stableKey);
    else {
      const at = anchorFromOffsets(offsets, relTop, (i) => stableKey(rows[i].key));
      control.anchor = at ? { key: rows[at.index].key, delta: at.delta } : null;
    }
    if (!covers(offsets, rendered.current, relTop, el.clientHeight, RERANGE_PX)) setView({ top: relTop, height: el.clientHeight });
    loadNearEdges();
    if (control.stick) void markRead(channelId);
  };

  // More history when the viewport is near either end. Also checked after every render: after
  // a prepend the viewport may still be near the top (a short page), and a reader already at the
  // very top cannot scroll further to ask again. The store ignores a call while a page loads.
  const loadNearEdges = () => {
    const el = scroller.current;
    if (!el || !cm || cm.loading) return;
    if (el.scrollTop < LOAD_MORE_PX && cm.hasMoreBefore) void loadOlder(channelId);
    else if (el.scrollHeight - el.scrollTop - el.clientHeight < LOAD_MORE_PX && cm.hasMoreAfter) void loadNewer(channelId);
  };

  // Feed keys on a focused message: Page Up/Down (and the arrows on the message itself) move to
  // the previous/next message, rendering it first if it is outside the window.
  const onKeyDown = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement;
    const article = target.closest("article.message");
    if (!article) return;
    if ((e.key === "ArrowUp" || e.key === "ArrowDown") && target !== article) return;
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const key = (article.parentElement as HTMLElement | null)?.dataset.key;
    const from = key ? indexOf.get(key) : undefined;
    if (from === undefined) return;
    const to = nextFocusable(focusable, from, e.key);
    if (to === null) return;
    e.preventDefault();
    control.stick = false;
    control.anchor = { key: rows[to].key, delta: -Math.round(view.height / 3) };
    focusNext.current = rows[to].key;
    setVersion((v) => v + 1);
  };

  return (
    <div class="message-scroller" ref={scroller} onScroll={onScroll} role="log" aria-label={label} aria-live="polite" aria-busy={cm?.loading ? "true" : "false"} tabIndex={0}>
      {before}
      <div
        class="message-rows"
        ref={box}
        data-loaded={list?.length ?? 0}
        data-rendered={segs.filter((s) => s.kind === "row").length}
        onKeyDown={onKeyDown}
        onFocusIn={(e) => { focusedKey.current = ((e.target as HTMLElement).closest(".vrow") as HTMLElement | null)?.dataset.key ?? null; }}
        onFocusOut={(e) => { if (!box.current?.contains(e.relatedTarget as Node | null)) focusedKey.current = null; }}
      >
        {segs.map((seg) => {
          if (seg.kind === "gap") return <div key={`gap-${seg.from}`} class="row-gap" style={{ height: `${seg.height}px` }} aria-hidden="true" />;
          const row = rows[seg.index];
          return (
            <div key={row.key} class="vrow" data-key={row.key}>
              {row.kind === "day" ? (
                <div class="day-separator" role="separator"><span>{formatDay(row.iso)}</span></div>
              ) : row.kind === "unread" ? (
                <div class="unread-separator" role="separator"><span>{t("msg.newMessages")}</span></div>
              ) : (
                <MemoMessage m={row.message} grouped={row.grouped} highlighted={highlightMessageId.value === row.message.id} seenBy={seen.get(row.message.id)} onHistory={onHistory} />
              )}
            </div>
          );
        })}
      </div>
      {after}
    </div>
  );
}
