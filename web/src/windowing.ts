// Windowing arithmetic for the message list (pure: no DOM, unit-tested with Vitest).
//
// The list keeps every loaded row in memory but renders only the rows near the viewport; the
// rest are replaced by spacers of their known (measured) or estimated height. Positions are in
// pixels from the top of the rows container. The scroll position is held as an anchor (a row's
// key and the distance from that row's top to the viewport's top), not as a pixel offset, so
// prepending older history, a row above changing height, or a jump to a row all keep what the
// reader sees in place.

/** Prefix sums: offsets[i] is the top of row i, offsets[n] the total height. */
export function computeOffsets(heights: readonly number[]): Float64Array {
  const offsets = new Float64Array(heights.length + 1);
  for (let i = 0; i < heights.length; i++) offsets[i + 1] = offsets[i] + heights[i];
  return offsets;
}

/** Offsets recomputed from row `from` on: rows before it keep their offsets from `offsets`, and
 * `heights` are the heights of rows from..end (appended rows, or rows whose height changed). An
 * arriving message or a newly measured row near the end then costs the rows after it only. */
export function offsetsFrom(offsets: Float64Array, from: number, heights: readonly number[]): Float64Array {
  const start = Math.max(0, Math.min(from, offsets.length - 1));
  const out = new Float64Array(start + heights.length + 1);
  out.set(offsets.subarray(0, start + 1));
  for (let i = 0; i < heights.length; i++) out[start + i + 1] = out[start + i] + heights[i];
  return out;
}

/** The index of the row that contains pixel y (clamped to [0, n-1]; -1 for no rows). */
export function rowAt(offsets: ArrayLike<number>, y: number): number {
  const n = offsets.length - 1;
  if (n <= 0) return -1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export interface Range { start: number; end: number } // rows [start, end)

/** Rows that intersect [top - overscan, top + height + overscan). */
export function visibleRange(offsets: ArrayLike<number>, top: number, height: number, overscan: number): Range {
  const n = offsets.length - 1;
  if (n <= 0) return { start: 0, end: 0 };
  const start = rowAt(offsets, Math.max(0, top - overscan));
  const last = rowAt(offsets, Math.max(0, top + height + overscan - 1));
  return { start, end: Math.min(n, last + 1) };
}

/** Whether the rendered range still covers the viewport with at least `margin` px to spare at
 * both ends (then a scroll needs no re-render). Ends of the list count as covered. */
export function covers(offsets: ArrayLike<number>, range: Range, top: number, height: number, margin: number): boolean {
  const n = offsets.length - 1;
  const above = range.start === 0 || offsets[range.start] <= Math.max(0, top - margin);
  const below = range.end >= n || offsets[range.end] >= top + height + margin;
  return above && below;
}

/** What is rendered: rows, and spacers for the runs of rows that are not. `indices` are the
 * rows to render (the visible range plus any kept ones, e.g. the focused row), in any order. */
export type Segment = { kind: "row"; index: number } | { kind: "gap"; height: number; from: number };

export function segments(offsets: ArrayLike<number>, indices: Iterable<number>): Segment[] {
  const n = offsets.length - 1;
  const sorted = [...new Set(indices)].filter((i) => i >= 0 && i < n).sort((a, b) => a - b);
  const out: Segment[] = [];
  let next = 0;
  for (const i of sorted) {
    if (i > next) out.push({ kind: "gap", height: offsets[i] - offsets[next], from: next });
    out.push({ kind: "row", index: i });
    next = i + 1;
  }
  if (n > next) out.push({ kind: "gap", height: offsets[n] - offsets[next], from: next });
  return out;
}

/** Indices start..end-1 plus the extra ones. */
export function withKept(range: Range, kept: Iterable<number>): number[] {
  const out: number[] = [];
  for (let i = range.start; i < range.end; i++) out.push(i);
  for (const k of kept) if (k < range.start || k >= range.end) out.push(k);
  return out;
}

/** A rendered row's place, as read from the DOM. */
export interface Placed { key: string; top: number; height: number }
export interface Anchor { key: string; delta: number }

/** The anchor for a scroll position: the first row whose bottom is below the viewport's top,
 * with the distance from its top to the viewport's top. `placed` must be in document order.
 * Rows whose key does not stay with the same content (`stable` false: a day separator moves to
 * the first message of its day when older ones are prepended) are passed over. */
export function pickAnchor(placed: readonly Placed[], scrollTop: number, stable: (key: string) => boolean = () => true): Anchor | null {
  for (const p of placed) if (p.top + p.height > scrollTop && stable(p.key)) return { key: p.key, delta: scrollTop - p.top };
  for (let i = placed.length - 1; i >= 0; i--) if (stable(placed[i].key)) return { key: placed[i].key, delta: scrollTop - placed[i].top };
  return null;
}

/** The anchor for a viewport top (rows-container pixels) from the offsets alone: used when the
 * viewport is over a spacer (a jump or a fast scroll), where no rendered row can be read. */
export function anchorFromOffsets(offsets: ArrayLike<number>, top: number, stable: (index: number) => boolean = () => true): { index: number; delta: number } | null {
  const n = offsets.length - 1;
  let index = rowAt(offsets, Math.max(0, top));
  if (index < 0) return null;
  while (index < n - 1 && !stable(index)) index++;
  return { index, delta: top - offsets[index] };
}

/** Whether some rendered row spans pixel y (then the DOM gives the exact anchor). */
export function spans(placed: readonly Placed[], y: number): boolean {
  return placed.some((p) => p.top <= y && p.top + p.height > y);
}

/** The viewport top (rows-container pixels) that an anchor asks for, from the offsets; null when
 * the anchored row is not in the list. */
export function anchoredTop(offsets: ArrayLike<number>, indexOfKey: number, anchor: Anchor): number | null {
  if (indexOfKey < 0 || indexOfKey >= offsets.length - 1) return null;
  return Math.max(0, offsets[indexOfKey] + anchor.delta);
}

/** The row heights: measured where known, else an estimate by kind. */
export function rowHeights<T>(rows: readonly T[], key: (row: T) => string, measured: ReadonlyMap<string, number>, estimate: (row: T) => number): number[] {
  return rows.map((row) => measured.get(key(row)) ?? estimate(row));
}

/** Whether the viewport is within `slack` px of the bottom (then new rows keep it at the bottom). */
export function atBottom(scrollHeight: number, scrollTop: number, clientHeight: number, slack = 40): boolean {
  return scrollHeight - scrollTop - clientHeight < slack;
}

/** The next row to focus for a key on a focused row (feed pattern: Page Up/Down, and the arrows),
 * skipping rows that cannot take focus (separators); null when there is none that way. */
export function nextFocusable(focusable: readonly boolean[], from: number, key: string): number | null {
  const step = key === "ArrowDown" || key === "PageDown" ? 1 : key === "ArrowUp" || key === "PageUp" ? -1 : 0;
  if (step === 0) return null;
  for (let i = from + step; i >= 0 && i < focusable.length; i += step) if (focusable[i]) return i;
  return null;
}
