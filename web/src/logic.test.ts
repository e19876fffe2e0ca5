import { describe, expect, it } from "vitest";
import {
  backoffMs, buildRows, countIncoming, indexRows, type RowIndex, documentTitle, draftKey, loadDraft, matchTitles, matchUsers, mentionQuery,
  mergeMessages, patchMessage, saveDraft, sections, settlePending, typingNames, type PendingSend,
} from "./logic";
import { translate, catalogues } from "./i18n";
import { emojiQuery, matchEmoji } from "./emoji";
import type { ChannelSummary, Message, User } from "./types";

function msg(id: number, seq: number, extra: Partial<Message> = {}): Message {
  return {
    id, seq, channel_id: 1, sender_id: 10, text: `m${id}`, created_at: "2026-11-27T10:00:00Z", edited_at: null,
    deleted_at: null, thread_root_id: null, reply_count: 0, last_reply_at: null, reply_participant_ids: [],
    reactions: [], pinned_at: null, pinned_by: null, mentioned_user_ids: [], mentions_channel: false,
    mentions_here: false, client_message_id: null, attachments: [], ...extra,
  };
}

function summary(id: number, kind: ChannelSummary["channel"]["kind"], extra: Partial<ChannelSummary> = {}): ChannelSummary {
  return {
    channel: { id, kind, name: `c${id}`, topic: "", purpose: "", created_by: 1, created_at: "2026-11-01T00:00:00Z", archived_at: null, last_seq: 5, last_message_at: null, member_count: 2, member_ids: [10, 20] },
    membership: { channel_id: id, user_id: 10, joined_at: "2026-11-01T00:00:00Z", last_read_seq: 5, muted: false, starred: false },
    unread_count: 0, mention_count: 0, ...extra,
  };
}

describe("mergeMessages", () => {
  it("orders by seq and never duplicates a message (resume seam, send echo)", () => {
    const a = mergeMessages([msg(1, 1), msg(3, 3)], [msg(2, 2), msg(3, 3, { text: "edited" })]);
    expect(a.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(a[2].text).toBe("edited");
    expect(mergeMessages(a, [msg(2, 2)]).length).toBe(3);
  });
  it("patchMessage leaves the list alone when the id is absent", () => {
    const list = [msg(1, 1)];
    expect(patchMessage(list, 9, (m) => m)).toBe(list);
    expect(patchMessage(list, 1, (m) => ({ ...m, text: "x" }))[0].text).toBe("x");
  });
});

describe("buildRows", () => {
  it("adds day separators, the unread line and groups consecutive messages", () => {
    const rows = buildRows([
      msg(1, 1, { created_at: "2026-11-26T10:00:00Z" }),
      msg(2, 2, { created_at: "2026-11-27T10:00:00Z" }),
      msg(3, 3, { created_at: "2026-11-27T10:01:00Z" }),
      msg(4, 4, { created_at: "2026-11-27T10:02:00Z", sender_id: 20 }),
      msg(5, 5, { created_at: "2026-11-27T10:30:00Z", sender_id: 20 }),
    ], 3);
    expect(rows.map((r) => r.kind)).toEqual(["day", "message", "day", "message", "message", "unread", "message", "message"]);
    const grouped = rows.filter((r) => r.kind === "message").map((r) => (r.kind === "message" ? r.grouped : null));
    expect(grouped).toEqual([false, false, true, false, false]);
  });
});

describe("counters", () => {
  it("counts unread and mentions for others' messages only", () => {
    const s = summary(1, "public");
    const other = countIncoming(s, msg(6, 6, { sender_id: 20, mentioned_user_ids: [10] }), 10, false);
    expect([other.unread_count, other.mention_count]).toEqual([1, 1]);
    const mine = countIncoming(other, msg(7, 7, { sender_id: 10 }), 10, false);
    expect([mine.unread_count, mine.membership?.last_read_seq]).toEqual([0, 7]);
    const viewing = countIncoming(s, msg(8, 8, { sender_id: 20 }), 10, true);
    expect(viewing.unread_count).toBe(0);
    const dm = countIncoming(summary(2, "direct"), msg(9, 9, { sender_id: 20 }), 10, false);
    expect(dm.mention_count).toBe(1);
    const reply = countIncoming(s, msg(10, 9, { sender_id: 20, thread_root_id: 1 }), 10, false);
    expect(reply.unread_count).toBe(0);
  });
  it("sections split starred, channels and DMs", () => {
    const sec = sections([summary(1, "public"), summary(2, "direct"), summary(3, "private", { membership: { ...summary(3, "private").membership!, starred: true } }), summary(4, "public", { membership: null })]);
    expect([sec.starred.length, sec.channels.length, sec.dms.length]).toEqual([1, 1, 1]);
  });
  it("title shows the unread count", () => {
    expect(documentTitle(0, "general")).toBe("general · Courtyard");
    expect(documentTitle(3, null)).toBe("(3) Courtyard");
    expect(documentTitle(120, null)).toBe("(99+) Courtyard");
  });
});

describe("composer helpers", () => {
  it("finds the @mention being typed, including CJK names", () => {
    expect(mentionQuery("hi @al", 6)).toEqual({ start: 3, query: "al" });
    expect(mentionQuery("mail a@b", 8)).toBeNull();
    expect(mentionQuery("@张", 2)).toEqual({ start: 0, query: "张" });
  });
  it("matches users by prefix first and skips deactivated ones", () => {
    const users = [
      { id: 1, username: "alan", display_name: "Alan", role: "member", created_at: "" },
      { id: 2, username: "kalani", display_name: "Kal", role: "member", created_at: "" },
      { id: 3, username: "alice", display_name: "Alice", role: "member", created_at: "", deactivated: true },
    ] as User[];
    expect(matchUsers(users, "al").map((u) => u.id)).toEqual([1, 2]);
    expect(matchTitles(["general", "dev-general", "random"], (x) => x, "#gen")).toEqual(["general", "dev-general"]);
  });
  it("keeps drafts per channel and thread; empty drafts are removed", () => {
    const data = new Map<string, string>();
    const store = { getItem: (k: string) => data.get(k) ?? null, setItem: (k: string, v: string) => void data.set(k, v), removeItem: (k: string) => void data.delete(k) };
    saveDraft(store, draftKey(1, 2), "hello");
    saveDraft(store, draftKey(1, 2, 7), "reply");
    expect(loadDraft(store, draftKey(1, 2))).toBe("hello");
    expect(loadDraft(store, draftKey(1, 2, 7))).toBe("reply");
    saveDraft(store, draftKey(1, 2), "  ");
    expect(data.has(draftKey(1, 2))).toBe(false);
  });
  it("settles pending sends by client_message_id", () => {
    const p: PendingSend[] = [
      { clientId: "a", channelId: 1, threadRootId: null, text: "x", fileIds: [], state: "sending" },
      { clientId: "b", channelId: 1, threadRootId: null, text: "y", fileIds: [], state: "failed" },
    ];
    expect(settlePending(p, [msg(1, 1, { client_message_id: "a" })]).map((x) => x.clientId)).toEqual(["b"]);
    expect(settlePending(p, [msg(1, 1)])).toBe(p);
  });
  it("typing expires and back-off is bounded", () => {
    const typing = [{ userId: 2, channelId: 1, threadRootId: null, until: 100 }, { userId: 3, channelId: 1, threadRootId: 5, until: 300 }];
    expect(typingNames(typing, 1, null, 50)).toEqual([2]);
    expect(typingNames(typing, 1, null, 150)).toEqual([]);
    expect(backoffMs(0, () => 0)).toBe(250);
    expect(backoffMs(50, () => 1)).toBe(30_000);
  });
});

describe("i18n", () => {
  it("zh-CN has every English key, translated, and interpolation works", () => {
    const en = Object.keys(catalogues.en);
    expect(Object.keys(catalogues["zh-CN"]).sort()).toEqual(en.sort());
    expect(translate("zh-CN", "sidebar.unread", { count: 3 })).toBe("3 条未读");
    expect(translate("en", "composer.placeholder", { channel: "#general" })).toBe("Message #general");
  });
});

describe("emoji autocomplete", () => {
  it("finds :name at the caret and matches names by prefix first", () => {
    expect(emojiQuery("nice :ta", 8)).toEqual({ start: 5, query: "ta" });
    expect(emojiQuery("10:30", 5)).toBeNull();
    expect(emojiQuery(":t", 2)).toBeNull();
    expect(matchEmoji("ta")[0]).toEqual(["tada", "🎉"]);
  });
});

describe("indexRows", () => {
  const day = (iso: string) => iso.slice(0, 10);
  const start = [
    msg(1, 1, { created_at: "2026-11-26T10:00:00Z" }),
    msg(2, 2, { created_at: "2026-11-27T10:00:00Z" }),
    msg(3, 3, { created_at: "2026-11-27T10:01:00Z" }),
  ];
  const fresh = (list: Message[], lastRead: number | null) => indexRows(null, list, lastRead, day, "UTC");
  const shape = (ix: RowIndex) => ({
    keys: ix.rows.map((r) => r.key),
    grouped: ix.rows.map((r) => (r.kind === "message" ? r.grouped : null)),
    index: [...ix.indexOf.entries()],
    focusable: ix.focusable,
  });

  it("extends the rows in place when messages are appended, as a rebuild would lay them out", () => {
    const first = indexRows(null, start, 2, day, "UTC");
    const rows = first.rows;
    const more = [...start, msg(4, 4, { created_at: "2026-11-27T10:02:00Z" }), msg(5, 5, { created_at: "2026-11-28T09:00:00Z", sender_id: 20 })];
    const next = indexRows(first, more, 2, day, "UTC");
    expect(next.rows).toBe(rows); // extended, not rebuilt
    expect(shape(next)).toEqual(shape(fresh(more, 2)));
    expect(next.rows.map((r) => r.kind)).toEqual(["day", "message", "day", "message", "unread", "message", "message", "day", "message"]);
  });

  it("places the unread line on the first appended message past the last read one", () => {
    const first = indexRows(null, start, 3, day, "UTC");
    const more = [...start, msg(4, 4, { created_at: "2026-11-27T10:02:00Z" })];
    const next = indexRows(first, more, 3, day, "UTC");
    expect(shape(next)).toEqual(shape(fresh(more, 3)));
    expect(next.indexOf.get("unread")).toBe(next.indexOf.get("m-4")! - 1);
  });

  it("rebuilds when a message was replaced, inserted, or the unread line or scope changed", () => {
    const first = indexRows(null, start, null, day, "UTC");
    const edited = [start[0], { ...start[1], text: "edited" }, start[2], msg(4, 4)];
    const afterEdit = indexRows(first, edited, null, day, "UTC");
    expect(afterEdit.rows).not.toBe(first.rows);
    expect(afterEdit.rows.find((r) => r.key === "m-2")).toMatchObject({ message: { text: "edited" } });

    const base = indexRows(null, start, null, day, "UTC");
    const inserted = [start[0], msg(9, 1.5, { created_at: "2026-11-26T11:00:00Z" }), start[1], start[2]];
    expect(shape(indexRows(base, inserted, null, day, "UTC"))).toEqual(shape(fresh(inserted, null)));

    const other = indexRows(null, start, null, day, "UTC");
    const more = [...start, msg(4, 4)];
    expect(indexRows(other, more, 1, day, "UTC").rows).not.toBe(other.rows);
    const zoned = indexRows(null, start, null, day, "UTC");
    expect(indexRows(zoned, more, null, day, "Europe/Berlin").rows).not.toBe(zoned.rows);
  });

  it("returns the same index for the same list", () => {
    const first = indexRows(null, start, null, day, "UTC");
    expect(indexRows(first, start, null, day, "UTC")).toBe(first);
  });
});
