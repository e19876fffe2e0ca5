import { describe, expect, it } from "vitest";
import {
  anchorFromOffsets, anchoredTop, spans, atBottom, computeOffsets, covers, nextFocusable, offsetsFrom, pickAnchor, rowAt, rowHeights, segments,
  visibleRange, withKept,
} from "./windowing";

// Ten rows, all 50 px but index 5 (300 px): tops 0,50,…,250, 550,600,650,700; total 750.
const heights = [50, 50, 50, 50, 50, 300, 50, 50, 50, 50];
const offsets = computeOffsets(heights);

describe("windowing arithmetic", () => {
  it("computes prefix offsets with the total last", () => {
    expect([...offsets]).toEqual([0, 50, 100, 150, 200, 250, 550, 600, 650, 700, 750]);
    expect([...computeOffsets([])]).toEqual([0]);
  });
  it("recomputes offsets from a row on, as computing them all would", () => {
    const appended = offsetsFrom(offsets, 10, [20, 30]);
    expect([...appended]).toEqual([...computeOffsets([...heights, 20, 30])]);
    const changed = offsetsFrom(offsets, 8, [100, 50, 20]);
    expect([...changed]).toEqual([...computeOffsets([...heights.slice(0, 8), 100, 50, 20])]);
    expect([...offsetsFrom(offsets, 0, [5])]).toEqual([0, 5]);
    expect(offsets[10]).toBe(750); // the old offsets are left as they were
  });

  it("finds the row containing a pixel, clamped to the list", () => {
    expect(rowAt(offsets, 0)).toBe(0);
    expect(rowAt(offsets, 49.9)).toBe(0);
    expect(rowAt(offsets, 50)).toBe(1);
    expect(rowAt(offsets, 400)).toBe(5);
    expect(rowAt(offsets, 10_000)).toBe(9);
    expect(rowAt(offsets, -5)).toBe(0);
    expect(rowAt(computeOffsets([]), 10)).toBe(-1);
  });

  it("renders the rows intersecting the viewport plus overscan", () => {
    expect(visibleRange(offsets, 260, 100, 0)).toEqual({ start: 5, end: 6 });
    expect(visibleRange(offsets, 260, 300, 0)).toEqual({ start: 5, end: 7 });
    expect(visibleRange(offsets, 260, 100, 60)).toEqual({ start: 4, end: 6 });
    expect(visibleRange(offsets, 0, 120, 0)).toEqual({ start: 0, end: 3 });
    expect(visibleRange(offsets, 700, 400, 100)).toEqual({ start: 7, end: 10 });
    expect(visibleRange(computeOffsets([]), 0, 500, 100)).toEqual({ start: 0, end: 0 });
  });

  it("keeps a window of 10,000 rows to the viewport's size", () => {
    const many = computeOffsets(new Array(10_000).fill(40));
    const r = visibleRange(many, 200_000, 800, 800);
    expect(r.end - r.start).toBe(60);
    expect(r.start).toBe(4980);
  });

  it("re-renders only when the viewport nears the rendered edge", () => {
    const range = { start: 2, end: 8 }; // pixels 100..650
    expect(covers(offsets, range, 200, 100, 50)).toBe(true);
    expect(covers(offsets, range, 120, 100, 50)).toBe(false); // 70 px above the top edge
    expect(covers(offsets, range, 200, 400, 50)).toBe(true); // bottom edge 650 = 200 + 400 + 50
    expect(covers(offsets, range, 200, 420, 50)).toBe(false);
    expect(covers(offsets, { start: 0, end: 10 }, 0, 5000, 100)).toBe(true); // both ends of the list
  });

  it("replaces unrendered runs by spacers of their exact height", () => {
    const segs = segments(offsets, [3, 4, 5]);
    expect(segs).toEqual([
      { kind: "gap", height: 150, from: 0 },
      { kind: "row", index: 3 },
      { kind: "row", index: 4 },
      { kind: "row", index: 5 },
      { kind: "gap", height: 200, from: 6 },
    ]);
    const total = segs.reduce((sum, s) => sum + (s.kind === "gap" ? s.height : heights[s.index]), 0);
    expect(total).toBe(offsets[10]);
  });

  it("keeps an extra row (the focused one) with spacers on both sides", () => {
    const indices = withKept({ start: 6, end: 8 }, [1, 7]);
    expect(indices.sort((a, b) => a - b)).toEqual([1, 6, 7]);
    expect(segments(offsets, indices)).toEqual([
      { kind: "gap", height: 50, from: 0 },
      { kind: "row", index: 1 },
      { kind: "gap", height: 450, from: 2 },
      { kind: "row", index: 6 },
      { kind: "row", index: 7 },
      { kind: "gap", height: 100, from: 8 },
    ]);
    expect(segments(offsets, [42, -1])).toEqual([{ kind: "gap", height: 750, from: 0 }]);
  });

  it("anchors on the first row still visible at the top, and finds it again after a prepend", () => {
    const placed = [
      { key: "m-1", top: 100, height: 50 },
      { key: "m-2", top: 150, height: 80 },
      { key: "m-3", top: 230, height: 40 },
    ];
    expect(pickAnchor(placed, 170)).toEqual({ key: "m-2", delta: 20 });
    expect(pickAnchor(placed, 150)).toEqual({ key: "m-2", delta: 0 });
    expect(pickAnchor(placed, 400)).toEqual({ key: "m-3", delta: 170 });
    expect(pickAnchor([], 10)).toBeNull();
    // 50 older rows of 40 px prepended: m-2 (was index 1) is now index 51.
    const after = computeOffsets([...new Array(50).fill(40), 50, 80, 40]);
    expect(anchoredTop(after, 51, { key: "m-2", delta: 20 })).toBe(2000 + 50 + 20);
    expect(anchoredTop(after, -1, { key: "gone", delta: 0 })).toBeNull();
    expect(anchoredTop(after, 0, { key: "m-x", delta: -300 })).toBe(0);
  });

  it("anchors from the offsets when the viewport is over a spacer", () => {
    const placed = [{ key: "m-9", top: 2300, height: 50 }];
    expect(spans(placed, 0)).toBe(false); // scrolled from the bottom straight to the top
    expect(spans(placed, 2320)).toBe(true);
    expect(anchorFromOffsets(offsets, 0)).toEqual({ index: 0, delta: 0 });
    expect(anchorFromOffsets(offsets, 300)).toEqual({ index: 5, delta: 50 });
    expect(anchorFromOffsets(offsets, -8)).toEqual({ index: 0, delta: -8 }); // above the first row
    expect(anchorFromOffsets(computeOffsets([]), 10)).toBeNull();
    // Row 5 is a day separator: the anchor is the message after it.
    expect(anchorFromOffsets(offsets, 300, (i) => i !== 5)).toEqual({ index: 6, delta: -250 });
  });

  it("never anchors on a day separator, which moves when older messages of its day arrive", () => {
    const placed = [
      { key: "day-2026-11-27", top: 0, height: 40 },
      { key: "m-7", top: 40, height: 50 },
    ];
    const stable = (key: string) => !key.startsWith("day-");
    expect(pickAnchor(placed, 10, stable)).toEqual({ key: "m-7", delta: -30 });
    expect(pickAnchor(placed, 500, stable)).toEqual({ key: "m-7", delta: 460 });
    expect(pickAnchor([placed[0]], 10, stable)).toBeNull();
  });

  it("uses measured heights where known and estimates elsewhere", () => {
    const rows = ["a", "b", "c"];
    const measuredHeights = new Map([["b", 77]]);
    expect(rowHeights(rows, (r) => r, measuredHeights, () => 40)).toEqual([40, 77, 40]);
  });

  it("tells when the viewport is at the bottom", () => {
    expect(atBottom(1000, 600, 400)).toBe(true);
    expect(atBottom(1000, 570, 400)).toBe(true);
    expect(atBottom(1000, 500, 400)).toBe(false);
  });

  it("moves focus between messages, skipping separators", () => {
    const focusable = [false, true, true, false, true];
    expect(nextFocusable(focusable, 2, "ArrowDown")).toBe(4);
    expect(nextFocusable(focusable, 2, "PageDown")).toBe(4);
    expect(nextFocusable(focusable, 4, "PageUp")).toBe(2);
    expect(nextFocusable(focusable, 1, "ArrowUp")).toBeNull();
    expect(nextFocusable(focusable, 4, "ArrowDown")).toBeNull();
    expect(nextFocusable(focusable, 2, "Enter")).toBeNull();
  });
});
