// A small :name: table for the composer's emoji autocomplete (the picker offers the same set).
export const EMOJI_NAMES: [string, string][] = [
  ["+1", "👍"], ["thumbsup", "👍"], ["-1", "👎"], ["thumbsdown", "👎"], ["heart", "❤️"], ["joy", "😂"],
  ["tada", "🎉"], ["eyes", "👀"], ["pray", "🙏"], ["fire", "🔥"], ["white_check_mark", "✅"], ["x", "❌"],
  ["smile", "😄"], ["grin", "😁"], ["wink", "😉"], ["cry", "😢"], ["open_mouth", "😮"], ["thinking", "🤔"],
  ["rocket", "🚀"], ["100", "💯"], ["clap", "👏"], ["raised_hands", "🙌"], ["sweat_smile", "😅"],
  ["handshake", "🤝"], ["star", "⭐"], ["coffee", "☕"], ["bug", "🐛"], ["pushpin", "📌"], ["wave", "👋"],
  ["ok_hand", "👌"], ["muscle", "💪"], ["sparkles", "✨"], ["warning", "⚠️"], ["bulb", "💡"], ["memo", "📝"],
  ["calendar", "📅"], ["lock", "🔒"], ["key", "🔑"], ["gear", "⚙️"], ["chart", "📈"], ["rotating_light", "🚨"],
  ["slightly_smiling_face", "🙂"], ["upside_down", "🙃"], ["sunglasses", "😎"], ["party", "🥳"], ["zzz", "💤"],
  ["skull", "💀"], ["shrug", "🤷"], ["facepalm", "🤦"], ["hourglass", "⏳"], ["point_up", "☝️"],
];

/** The :name being typed at the caret (two or more characters), if any. */
export function emojiQuery(text: string, caret: number): { start: number; query: string } | null {
  const match = text.slice(0, caret).match(/(?:^|\s):([a-z0-9_+-]{2,32})$/i);
  if (!match) return null;
  return { start: caret - match[1].length - 1, query: match[1].toLowerCase() };
}

export function matchEmoji(query: string, limit = 6): [string, string][] {
  const prefix = EMOJI_NAMES.filter(([name]) => name.startsWith(query));
  const inner = EMOJI_NAMES.filter(([name]) => !name.startsWith(query) && name.includes(query));
  return [...prefix, ...inner].slice(0, limit);
}
