// A tiny i18n layer: message catalogues (en, zh-CN), {name} interpolation, Intl for dates.
import { signal } from "@preact/signals";

const en = {
  "app.name": "Courtyard",
  "auth.signIn": "Sign in",
  "auth.signOut": "Sign out",
  "auth.login": "Username or email",
  "auth.password": "Password",
  "auth.code": "Authenticator code or recovery code",
  "auth.failed": "Sign-in failed: {detail}",
  "auth.expired": "Your session has expired. Sign in again; your unsent text is kept.",
  "auth.deactivated": "This account has been deactivated. Ask an administrator if this is a mistake.",
  "setup.title": "Create your organisation",
  "setup.intro": "Paste the one-time setup token that `courtyard serve` printed, then choose the owner's account.",
  "setup.token": "Setup token",
  "setup.org": "Organisation name",
  "setup.username": "Owner username",
  "setup.displayName": "Display name",
  "setup.create": "Create organisation",
  "setup.done": "The organisation already exists.",
  "invite.title": "Join {org}",
  "invite.intro": "You were invited as {role}. Choose your account.",
  "invite.join": "Create account",
  "invite.invalid": "This invite link is invalid, used or expired.",
  "field.username": "Username",
  "field.displayName": "Display name",
  "field.email": "Email (optional)",
  "sidebar.starred": "Starred",
  "sidebar.channels": "Channels",
  "sidebar.dms": "Direct messages",
  "sidebar.unread": "{count} unread",
  "sidebar.mentions": "{count} mentions",
  "sidebar.newChannel": "New channel",
  "sidebar.browse": "Browse channels",
  "sidebar.newDm": "New message",
  "sidebar.label": "Conversations",
  "conn.connecting": "Connecting…",
  "conn.reconnecting": "Connection lost. Reconnecting…",
  "conn.online": "Connected",
  "msg.loadOlder": "Loading older messages…",
  "msg.beginning": "This is the very beginning of {channel}.",
  "msg.edited": "(edited)",
  "msg.deleted": "This message was deleted.",
  "msg.today": "Today",
  "msg.yesterday": "Yesterday",
  "msg.replies": "{count} replies",
  "msg.reply1": "1 reply",
  "msg.reply": "Reply in thread",
  "msg.react": "Add reaction",
  "msg.edit": "Edit",
  "msg.delete": "Delete",
  "msg.deleteConfirm": "Delete this message? This cannot be undone.",
  "msg.pin": "Pin",
  "msg.unpin": "Unpin",
  "msg.pinned": "Pinned",
  "msg.copyLink": "Copy link",
  "msg.history": "Edit history",
  "msg.seenBy": "Seen by {names}",
  "msg.failed": "Not sent.",
  "msg.retry": "Retry",
  "msg.discard": "Discard",
  "msg.sending": "Sending…",
  "msg.save": "Save",
  "msg.cancel": "Cancel",
  "msg.newMessages": "New messages",
  "msg.jumpUnread": "Jump to first unread",
  "msg.list": "Messages in {channel}",
  "composer.placeholder": "Message {channel}",
  "composer.replyPlaceholder": "Reply…",
  "composer.send": "Send",
  "composer.attach": "Attach files",
  "composer.uploading": "Uploading {name}…",
  "composer.label": "Message text",
  "composer.suggestions": "Suggestions",
  "typing.one": "{name} is typing…",
  "typing.many": "Several people are typing…",
  "thread.title": "Thread",
  "thread.close": "Close thread",
  "pins.title": "Pinned messages",
  "pins.none": "Nothing is pinned here.",
  "history.title": "Edit history",
  "switcher.title": "Jump to…",
  "switcher.placeholder": "Channel or person",
  "switcher.none": "No matches",
  "search.title": "Search",
  "search.placeholder": "Search messages (from:@user in:#channel \"phrase\")",
  "search.none": "No results",
  "settings.title": "Profile and preferences",
  "settings.theme": "Theme",
  "settings.theme.system": "System",
  "settings.theme.light": "Light",
  "settings.theme.dark": "Dark",
  "settings.language": "Language",
  "settings.status": "Status",
  "settings.title.field": "Title",
  "settings.saved": "Saved",
  "settings.notifications": "Desktop notifications for mentions and direct messages",
  "settings.save": "Save",
  "admin.title": "Administration",
  "admin.users": "Users",
  "admin.invites": "Invites",
  "admin.role": "Role",
  "admin.deactivate": "Deactivate",
  "admin.reactivate": "Reactivate",
  "admin.deactivated": "deactivated",
  "admin.newInvite": "Create invite link",
  "admin.inviteLink": "Invite link (shown once)",
  "admin.revoke": "Revoke",
  "admin.used": "used",
  "admin.revoked": "revoked",
  "admin.expires": "expires {date}",
  "channel.create": "Create",
  "channel.name": "Name",
  "channel.topic": "Topic",
  "channel.private": "Private",
  "channel.join": "Join",
  "channel.joinToPost": "Join {channel} to post",
  "channel.members": "{count} members",
  "channel.mute": "Mute",
  "channel.unmute": "Unmute",
  "channel.star": "Star",
  "channel.unstar": "Unstar",
  "dm.start": "Start",
  "dm.pick": "People",
  "presence.online": "online",
  "presence.away": "away",
  "presence.offline": "offline",
  "common.close": "Close",
  "common.error": "Something went wrong: {detail}",
  "common.loading": "Loading…",
  "nav.settings": "Preferences",
  "nav.admin": "Administration",
  "nav.search": "Search",
  "nav.back": "Back to conversations",
  "emoji.title": "Pick a reaction",
  "role.owner": "owner",
  "role.admin": "administrator",
  "role.member": "member",
  "role.guest": "guest",
};

export type MessageKey = keyof typeof en;
type Catalogue = Record<MessageKey, string>;

const zhCN: Catalogue = {
  "app.name": "Courtyard",
  "auth.signIn": "登录",
  "auth.signOut": "退出登录",
  "auth.login": "用户名或邮箱",
  "auth.password": "密码",
  "auth.code": "验证器代码或恢复码",
  "auth.failed": "登录失败：{detail}",
  "auth.expired": "会话已过期，请重新登录；未发送的内容已保留。",
  "auth.deactivated": "此账号已被停用。如有疑问，请联系管理员。",
  "setup.title": "创建你的组织",
  "setup.intro": "粘贴 `courtyard serve` 打印的一次性设置令牌，然后设置所有者账号。",
  "setup.token": "设置令牌",
  "setup.org": "组织名称",
  "setup.username": "所有者用户名",
  "setup.displayName": "显示名称",
  "setup.create": "创建组织",
  "setup.done": "组织已经存在。",
  "invite.title": "加入 {org}",
  "invite.intro": "你被邀请为{role}。请设置你的账号。",
  "invite.join": "创建账号",
  "invite.invalid": "此邀请链接无效、已使用或已过期。",
  "field.username": "用户名",
  "field.displayName": "显示名称",
  "field.email": "邮箱（可选）",
  "sidebar.starred": "星标",
  "sidebar.channels": "频道",
  "sidebar.dms": "私信",
  "sidebar.unread": "{count} 条未读",
  "sidebar.mentions": "{count} 条提及",
  "sidebar.newChannel": "新建频道",
  "sidebar.browse": "浏览频道",
  "sidebar.newDm": "新消息",
  "sidebar.label": "会话",
  "conn.connecting": "正在连接…",
  "conn.reconnecting": "连接已断开，正在重新连接…",
  "conn.online": "已连接",
  "msg.loadOlder": "正在加载更早的消息…",
  "msg.beginning": "这是 {channel} 的开端。",
  "msg.edited": "（已编辑）",
  "msg.deleted": "此消息已删除。",
  "msg.today": "今天",
  "msg.yesterday": "昨天",
  "msg.replies": "{count} 条回复",
  "msg.reply1": "1 条回复",
  "msg.reply": "在话题中回复",
  "msg.react": "添加表情回应",
  "msg.edit": "编辑",
  "msg.delete": "删除",
  "msg.deleteConfirm": "删除这条消息？此操作无法撤销。",
  "msg.pin": "置顶",
  "msg.unpin": "取消置顶",
  "msg.pinned": "已置顶",
  "msg.copyLink": "复制链接",
  "msg.history": "编辑历史",
  "msg.seenBy": "{names} 已读",
  "msg.failed": "未发送。",
  "msg.retry": "重试",
  "msg.discard": "放弃",
  "msg.sending": "正在发送…",
  "msg.save": "保存",
  "msg.cancel": "取消",
  "msg.newMessages": "新消息",
  "msg.jumpUnread": "跳到第一条未读",
  "msg.list": "{channel} 中的消息",
  "composer.placeholder": "发消息到 {channel}",
  "composer.replyPlaceholder": "回复…",
  "composer.send": "发送",
  "composer.attach": "添加文件",
  "composer.uploading": "正在上传 {name}…",
  "composer.label": "消息内容",
  "composer.suggestions": "建议",
  "typing.one": "{name} 正在输入…",
  "typing.many": "多人正在输入…",
  "thread.title": "话题",
  "thread.close": "关闭话题",
  "pins.title": "置顶消息",
  "pins.none": "这里没有置顶消息。",
  "history.title": "编辑历史",
  "switcher.title": "跳转到…",
  "switcher.placeholder": "频道或成员",
  "switcher.none": "没有匹配项",
  "search.title": "搜索",
  "search.placeholder": "搜索消息（from:@用户 in:#频道 \"短语\"）",
  "search.none": "没有结果",
  "settings.title": "个人资料和偏好设置",
  "settings.theme": "主题",
  "settings.theme.system": "跟随系统",
  "settings.theme.light": "浅色",
  "settings.theme.dark": "深色",
  "settings.language": "语言",
  "settings.status": "状态",
  "settings.title.field": "职位",
  "settings.saved": "已保存",
  "settings.notifications": "提及和私信的桌面通知",
  "settings.save": "保存",
  "admin.title": "管理",
  "admin.users": "用户",
  "admin.invites": "邀请",
  "admin.role": "角色",
  "admin.deactivate": "停用",
  "admin.reactivate": "重新启用",
  "admin.deactivated": "已停用",
  "admin.newInvite": "创建邀请链接",
  "admin.inviteLink": "邀请链接（仅显示一次）",
  "admin.revoke": "撤销",
  "admin.used": "已使用",
  "admin.revoked": "已撤销",
  "admin.expires": "{date} 过期",
  "channel.create": "创建",
  "channel.name": "名称",
  "channel.topic": "主题",
  "channel.private": "私有",
  "channel.join": "加入",
  "channel.joinToPost": "加入 {channel} 后才能发言",
  "channel.members": "{count} 位成员",
  "channel.mute": "静音",
  "channel.unmute": "取消静音",
  "channel.star": "加星标",
  "channel.unstar": "取消星标",
  "dm.start": "开始",
  "dm.pick": "成员",
  "presence.online": "在线",
  "presence.away": "离开",
  "presence.offline": "离线",
  "common.close": "关闭",
  "common.error": "出错了：{detail}",
  "common.loading": "正在加载…",
  "nav.settings": "偏好设置",
  "nav.admin": "管理",
  "nav.search": "搜索",
  "nav.back": "返回会话",
  "emoji.title": "选择表情回应",
  "role.owner": "所有者",
  "role.admin": "管理员",
  "role.member": "成员",
  "role.guest": "访客",
};

export const catalogues: Record<Locale, Catalogue> = { en, "zh-CN": zhCN };
export type Locale = "en" | "zh-CN";
export const LOCALES: { id: Locale; name: string }[] = [
  { id: "en", name: "English" },
  { id: "zh-CN", name: "简体中文" },
];

function initialLocale(): Locale {
  const saved = globalThis.localStorage?.getItem("courtyard.locale");
  if (saved === "en" || saved === "zh-CN") return saved;
  const nav = globalThis.navigator?.language ?? "en";
  return nav.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export const locale = signal<Locale>(initialLocale());

export function setLocale(next: Locale): void {
  locale.value = next;
  localStorage.setItem("courtyard.locale", next);
  document.documentElement.lang = next;
}

export function translate(loc: Locale, key: MessageKey, vars?: Record<string, string | number>): string {
  const text = catalogues[loc][key] ?? en[key];
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (all, name: string) => (name in vars ? String(vars[name]) : all));
}

export function t(key: MessageKey, vars?: Record<string, string | number>): string {
  return translate(locale.value, key, vars);
}

// The user's profile time zone when set (and known to this browser), else the browser's.
export const timeZone = signal<string | undefined>(undefined);

export function setTimeZone(zone: string | null | undefined): void {
  try {
    timeZone.value = zone ? new Intl.DateTimeFormat("en", { timeZone: zone }).resolvedOptions().timeZone : undefined;
  } catch {
    timeZone.value = undefined;
  }
}

export function formatTime(iso: string): string {
  return new Intl.DateTimeFormat(locale.value, { hour: "numeric", minute: "2-digit", timeZone: timeZone.value }).format(new Date(iso));
}

export function formatDateTime(iso: string): string {
  return new Intl.DateTimeFormat(locale.value, { dateStyle: "medium", timeStyle: "short", timeZone: timeZone.value }).format(new Date(iso));
}

export function formatDay(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  const day = (x: Date) => `${x.getFullYear()}-${x.getMonth()}-${x.getDate()}`;
  if (day(d) === day(now)) return t("msg.today");
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (day(d) === day(y)) return t("msg.yesterday");
  return new Intl.DateTimeFormat(locale.value, { weekday: "long", month: "long", day: "numeric", year: "numeric", timeZone: timeZone.value }).format(d);
}
