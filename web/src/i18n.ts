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
  "auth.tooMany": "Too many failed attempts. Try again in {seconds} seconds.",
  "twofa.step.title": "Two-step sign-in",
  "twofa.step.intro": "Enter the 6-digit code from your authenticator app, or a recovery code.",
  "twofa.step.introRecovery": "Enter one of your recovery codes. Each code works once.",
  "twofa.recoveryCode": "Recovery code",
  "twofa.useRecovery": "Use a recovery code instead",
  "twofa.useApp": "Use your authenticator app instead",
  "twofa.startOver": "Use a different account",
  "twofa.error.wrong": "That code is not right. Check the time on your device and try again.",
  "twofa.error.tooMany": "Too many wrong codes. Try again in {seconds} seconds.",
  "twofa.error.expired": "This sign-in has expired. Sign in with your password again.",
  "twofa.error.format": "Enter the 6-digit code from the app, or a recovery code (xxxx-xxxx-xxxx-xxxx).",
  "twofa.error.other": "The code could not be checked: {detail}",
  "twofa.settings.title": "Two-factor authentication",
  "twofa.status.on": "On. Recovery codes left: {count}.",
  "twofa.status.off": "Off. Add a code from an authenticator app to your password.",
  "twofa.status.required": "Your organisation requires two-factor authentication.",
  "twofa.enrol.start": "Set up two-factor authentication",
  "twofa.enrol.requiredIntro": "Your organisation requires a second factor. Set up an authenticator app to continue.",
  "twofa.enrol.scan": "Scan this QR code with an authenticator app, or enter the key by hand.",
  "twofa.enrol.qrAlt": "QR code for your authenticator app",
  "twofa.enrol.secret": "Key for manual entry",
  "twofa.enrol.uri": "Setup link",
  "twofa.enrol.confirmCode": "First code from the app",
  "twofa.enrol.confirm": "Turn on",
  "twofa.enrol.cancel": "Cancel",
  "twofa.codes.title": "Your recovery codes",
  "twofa.codes.intro": "Each code signs you in once if you lose your device. They are shown only now: store them somewhere safe.",
  "twofa.codes.list": "Recovery codes",
  "twofa.codes.copy": "Copy codes",
  "twofa.codes.copied": "Copied.",
  "twofa.codes.copyFailed": "Could not copy; select the codes and copy them by hand.",
  "twofa.codes.download": "Download codes",
  "twofa.codes.fileHeading": "Courtyard recovery codes for {user}",
  "twofa.codes.done": "I have stored them",
  "twofa.codes.regenerate": "New recovery codes",
  "twofa.disable": "Turn off two-factor authentication",
  "twofa.turnedOff": "Two-factor authentication is off.",
  "reauth.title": "Confirm it is you",
  "reauth.intro": "This action needs your password again.",
  "reauth.introCode": "This action needs a code from your authenticator app (or a recovery code).",
  "reauth.useCode": "Use a code instead",
  "reauth.usePassword": "Use your password instead",
  "reauth.confirm": "Confirm",
  "reauth.wrongPassword": "That password is not right.",
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
  "settings.timezone": "Time zone",
  "settings.timezoneBrowser": "This browser's time zone ({zone})",
  "channel.editTopic": "Edit topic",
  "channel.addTopic": "Add a topic",
  "settings.save": "Save",
  "admin.title": "Administration",
  "admin.users": "Users",
  "admin.invites": "Invites",
  "admin.role": "Role",
  "admin.deactivate": "Deactivate",
  "admin.reactivate": "Reactivate",
  "admin.resetTwoFactor": "Reset two-factor",
  "admin.twoFactorReset": "Two-factor sign-in was reset for @{name}; they set it up again at their next sign-in.",
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
  "auth.tooMany": "尝试失败次数过多。请在 {seconds} 秒后重试。",
  "twofa.step.title": "两步登录",
  "twofa.step.intro": "请输入身份验证器应用中的 6 位验证码，或一个恢复码。",
  "twofa.step.introRecovery": "请输入一个恢复码。每个恢复码只能使用一次。",
  "twofa.recoveryCode": "恢复码",
  "twofa.useRecovery": "改用恢复码",
  "twofa.useApp": "改用身份验证器应用",
  "twofa.startOver": "换一个账号",
  "twofa.error.wrong": "验证码不正确。请检查设备时间后重试。",
  "twofa.error.tooMany": "错误次数过多。请在 {seconds} 秒后重试。",
  "twofa.error.expired": "本次登录已过期。请重新输入密码登录。",
  "twofa.error.format": "请输入应用中的 6 位验证码，或恢复码（xxxx-xxxx-xxxx-xxxx）。",
  "twofa.error.other": "无法校验验证码：{detail}",
  "twofa.settings.title": "双重身份验证",
  "twofa.status.on": "已开启。剩余恢复码：{count} 个。",
  "twofa.status.off": "未开启。在密码之外再使用身份验证器应用中的验证码。",
  "twofa.status.required": "你的组织要求开启双重身份验证。",
  "twofa.enrol.start": "设置双重身份验证",
  "twofa.enrol.requiredIntro": "你的组织要求使用第二重验证。请设置身份验证器应用后继续。",
  "twofa.enrol.scan": "用身份验证器应用扫描此二维码，或手动输入密钥。",
  "twofa.enrol.qrAlt": "身份验证器应用的二维码",
  "twofa.enrol.secret": "手动输入的密钥",
  "twofa.enrol.uri": "设置链接",
  "twofa.enrol.confirmCode": "应用显示的第一个验证码",
  "twofa.enrol.confirm": "开启",
  "twofa.enrol.cancel": "取消",
  "twofa.codes.title": "你的恢复码",
  "twofa.codes.intro": "设备丢失时，每个恢复码可登录一次。恢复码只显示这一次，请妥善保存。",
  "twofa.codes.list": "恢复码",
  "twofa.codes.copy": "复制恢复码",
  "twofa.codes.copied": "已复制。",
  "twofa.codes.copyFailed": "无法复制；请手动选中恢复码并复制。",
  "twofa.codes.download": "下载恢复码",
  "twofa.codes.fileHeading": "{user} 的 Courtyard 恢复码",
  "twofa.codes.done": "我已保存",
  "twofa.codes.regenerate": "生成新的恢复码",
  "twofa.disable": "关闭双重身份验证",
  "twofa.turnedOff": "双重身份验证已关闭。",
  "reauth.title": "确认是你本人",
  "reauth.intro": "此操作需要再次输入密码。",
  "reauth.introCode": "此操作需要身份验证器应用中的验证码（或恢复码）。",
  "reauth.useCode": "改用验证码",
  "reauth.usePassword": "改用密码",
  "reauth.confirm": "确认",
  "reauth.wrongPassword": "密码不正确。",
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
  "settings.timezone": "时区",
  "settings.timezoneBrowser": "此浏览器的时区（{zone}）",
  "channel.editTopic": "编辑主题",
  "channel.addTopic": "添加主题",
  "settings.save": "保存",
  "admin.title": "管理",
  "admin.users": "用户",
  "admin.invites": "邀请",
  "admin.role": "角色",
  "admin.deactivate": "停用",
  "admin.reactivate": "重新启用",
  "admin.resetTwoFactor": "重置双重验证",
  "admin.twoFactorReset": "已为 @{name} 重置双重验证；其下次登录时需重新设置。",
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

// Formatters by kind, locale and zone: creating an Intl.DateTimeFormat costs far more than
// formatting with one, and every newly shown message row formats two times (profiled: ~6% of the
// main thread while scrolling 10,000 messages, more than markdown).
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(kind: "time" | "dateTime"): Intl.DateTimeFormat {
  const zone = timeZone.value;
  const key = `${kind}\u0000${locale.value}\u0000${zone ?? ""}`;
  let format = formatters.get(key);
  if (!format) {
    const options: Intl.DateTimeFormatOptions = kind === "time" ? { hour: "numeric", minute: "2-digit" } : { dateStyle: "medium", timeStyle: "short" };
    format = new Intl.DateTimeFormat(locale.value, { ...options, timeZone: zone });
    formatters.set(key, format);
  }
  return format;
}

export function formatTime(iso: string): string {
  return formatter("time").format(new Date(iso));
}

export function formatDateTime(iso: string): string {
  return formatter("dateTime").format(new Date(iso));
}

// The calendar day (YYYY-MM-DD) of an instant in the chosen time zone; cached, since the message
// list asks for every loaded message's day whenever it changes.
let dayFormat: { zone: string | undefined; format: Intl.DateTimeFormat; cache: Map<string, string> } | null = null;

export function dayKey(iso: string): string {
  const zone = timeZone.value;
  if (!dayFormat || dayFormat.zone !== zone) {
    dayFormat = { zone, format: new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", timeZone: zone }), cache: new Map() };
  }
  let day = dayFormat.cache.get(iso);
  if (day === undefined) {
    day = dayFormat.format.format(new Date(iso));
    if (dayFormat.cache.size > 50_000) dayFormat.cache.clear();
    dayFormat.cache.set(iso, day);
  }
  return day;
}

export function formatDay(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  const day = dayKey(iso);
  if (day === dayKey(now.toISOString())) return t("msg.today");
  if (day === dayKey(new Date(now.getTime() - 86_400_000).toISOString())) return t("msg.yesterday");
  return new Intl.DateTimeFormat(locale.value, { weekday: "long", month: "long", day: "numeric", year: "numeric", timeZone: timeZone.value }).format(d);
}
