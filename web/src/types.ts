// Shapes of the REST API's objects (docs/api.md; OpenAPI at /api/v1/openapi.json).
export type Role = "owner" | "admin" | "member" | "guest";
export type ChannelKind = "public" | "private" | "direct" | "group";

export interface CustomStatus { emoji: string | null; text: string; expires_at: string | null }
export interface User {
  id: number; username: string; display_name: string; role: Role; is_bot?: boolean; title?: string;
  timezone?: string; status?: CustomStatus | null; email?: string | null; created_at: string;
  deactivated?: boolean; send_read_receipts?: boolean | null;
}
export interface Channel {
  id: number; kind: ChannelKind; name: string; topic: string; purpose: string; created_by: number | null;
  created_at: string; archived_at: string | null; last_seq: number; last_message_at: string | null;
  member_count: number; member_ids: number[] | null;
}
export interface Membership { channel_id: number; user_id: number; joined_at: string; last_read_seq: number; muted: boolean; starred: boolean }
export interface ChannelSummary { channel: Channel; membership: Membership | null; unread_count: number; mention_count: number }
export interface ReactionGroup { emoji: string; count: number; user_ids: number[] }
export interface Attachment { id: number; name: string; media_type: string; size: number; width: number | null; height: number | null; has_thumbnail: boolean }
export interface Message {
  id: number; channel_id: number; seq: number; sender_id: number; text: string; created_at: string;
  edited_at: string | null; deleted_at: string | null; thread_root_id: number | null; reply_count: number;
  last_reply_at: string | null; reply_participant_ids: number[]; reactions: ReactionGroup[];
  pinned_at: string | null; pinned_by: number | null; mentioned_user_ids: number[]; mentions_channel: boolean;
  mentions_here: boolean; client_message_id: string | null; attachments: Attachment[];
}
export interface HistoryPage { messages: Message[]; has_more_before: boolean; has_more_after: boolean }
export interface StateResponse { user: User; channels: ChannelSummary[]; position: number; events_url: string }
// With second_factor_required the session is pending (user null) until POST /auth/sign-in/second-factor.
export interface SignedIn { user: User | null; session_id: number; expires_at: string; token: string | null; csrf_token: string | null; second_factor_required?: boolean }
export interface TwoFactorStatus { enabled: boolean; required: boolean; enrolment_pending: boolean; recovery_codes_left: number; reauthentication_required: boolean }
export interface Enrolment { secret: string; otpauth_uri: string; qr_svg: string }
export interface Invite { id: number; role: Role; email: string | null; created_by: number; created_at: string; expires_at: string; used_at: string | null; revoked: boolean }
export interface MessageVersion { version: number; text: string; edited_at: string; editor_id: number }
export interface FileInfo { id: number; name: string; media_type: string; size: number; has_thumbnail: boolean }
export interface SearchResult { message: Message; channel: { id: number; kind: ChannelKind; name: string }; snippet: string; highlights: [number, number][] }
