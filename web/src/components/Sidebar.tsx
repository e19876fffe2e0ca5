import { t } from "../i18n";
import { channelTitle, sections } from "../logic";
import { navigate } from "../router";
import { currentChannelId, me, presence, summaries, users } from "../store";
import type { ChannelSummary } from "../types";

export function PresenceDot({ userId }: { userId: number }) {
  const status = presence.value.get(userId) ?? "offline";
  return <span class={`presence presence-${status}`} role="img" aria-label={t(`presence.${status}` as "presence.online")} />;
}

function Item({ s, onPick }: { s: ChannelSummary; onPick?: () => void }) {
  const my = me.value!.id;
  const title = channelTitle(s, my, users.value);
  const active = currentChannelId.value === s.channel.id;
  const dm = s.channel.kind === "direct" || s.channel.kind === "group";
  const other = dm && s.channel.kind === "direct" ? (s.channel.member_ids ?? []).find((id) => id !== my) : undefined;
  const unread = s.unread_count > 0 && !s.membership?.muted;
  return (
    <li>
      <a
        href={`/c/${s.channel.id}`}
        class={`channel-link${active ? " active" : ""}${unread ? " unread" : ""}${s.membership?.muted ? " muted" : ""}`}
        aria-current={active ? "page" : undefined}
        data-channel-id={s.channel.id}
        onClick={(e) => { e.preventDefault(); onPick?.(); navigate(`/c/${s.channel.id}`); }}
      >
        <span class="channel-icon" aria-hidden="true">{dm ? (other !== undefined ? "" : "👥") : s.channel.kind === "private" ? "🔒" : "#"}</span>
        {other !== undefined && <PresenceDot userId={other} />}
        <span class="channel-name">{title}</span>
        {s.mention_count > 0 ? (
          <span class="badge mention" aria-label={t("sidebar.mentions", { count: s.mention_count })}>{s.mention_count}</span>
        ) : unread ? (
          <span class="badge" aria-label={t("sidebar.unread", { count: s.unread_count })}>{s.unread_count}</span>
        ) : null}
      </a>
    </li>
  );
}

function Section({ label, items, actions, onPick }: { label: string; items: ChannelSummary[]; actions?: preact.ComponentChildren; onPick?: () => void }) {
  if (items.length === 0 && !actions) return null;
  return (
    <section class="sidebar-section" aria-label={label}>
      <h2>{label}{actions}</h2>
      <ul>{items.map((s) => <Item key={s.channel.id} s={s} onPick={onPick} />)}</ul>
    </section>
  );
}

export function orderedChannelIds(): number[] {
  const sec = sections([...summaries.value.values()]);
  return [...sec.starred, ...sec.channels, ...sec.dms].map((s) => s.channel.id);
}

export function Sidebar({ onNewChannel, onNewDm, onPick }: { onNewChannel: () => void; onNewDm: () => void; onPick?: () => void }) {
  const sec = sections([...summaries.value.values()]);
  return (
    <nav class="sidebar" aria-label={t("sidebar.label")}>
      <Section label={t("sidebar.starred")} items={sec.starred} onPick={onPick} />
      <Section
        label={t("sidebar.channels")}
        items={sec.channels}
        onPick={onPick}
        actions={<button type="button" class="icon-button" onClick={onNewChannel} aria-label={t("sidebar.newChannel")} title={t("sidebar.newChannel")}>＋</button>}
      />
      <Section
        label={t("sidebar.dms")}
        items={sec.dms}
        onPick={onPick}
        actions={<button type="button" class="icon-button" onClick={onNewDm} aria-label={t("sidebar.newDm")} title={t("sidebar.newDm")}>＋</button>}
      />
    </nav>
  );
}
