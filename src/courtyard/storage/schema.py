"""The relational schema, in SQLAlchemy Core. Alembic migrations are the source of truth on disk;
this module mirrors them so queries are typed and a test checks both agree.

Conventions: integer surrogate keys; timestamps are BIGINT microseconds (``timestamps.py``);
booleans are real booleans; JSON lists are stored as TEXT written by the repositories.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BIGINT primary keys autoincrement on PostgreSQL; SQLite needs INTEGER for its rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")

organization = Table(
    "organization",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

setup_tokens = Table(
    "setup_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("email", String(254), nullable=True),
    Column("email_key", String(254), nullable=True, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("is_bot", Boolean, nullable=False, default=False),
    Column("bot_owner_id", Id, ForeignKey("users.id"), nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("title", String(128), nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default=""),
    Column("status_emoji", String(32), nullable=True),
    Column("status_text", String(128), nullable=False, default=""),
    Column("status_expires_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deactivated_at", BigInteger, nullable=True),
    Column("credentials_changed_at", BigInteger, nullable=False),
    Column("send_read_receipts", Boolean, nullable=False, default=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("user_agent", String(256), nullable=False, default=""),
    Column("ip_address", String(64), nullable=False, default=""),
    # Migration 0003: 'active', or 'pending' while the second factor is still to be given
    # (a pending session authenticates nothing). ``reauthenticated_at``: the last password or
    # second-factor proof, for actions that need a recent one.
    Column("state", String(16), nullable=False, default="active", server_default="active"),
    Column("reauthenticated_at", BigInteger, nullable=True),
)
Index("ix_sessions_expires_at", sessions.c.expires_at)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_by", Id, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

invites = Table(
    "invites",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("email", String(254), nullable=True),
    Column("created_by", Id, ForeignKey("users.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("used_by", Id, ForeignKey("users.id"), nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

channels = Table(
    "channels",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(80), nullable=False),
    # Case-folded name; unique among public and private channels (partial index below).
    Column("name_key", String(80), nullable=True),
    # Sorted member ids of a direct or group conversation: the same people, the same channel.
    Column("dm_key", String(200), nullable=True, unique=True),
    Column("topic", String(250), nullable=False, default=""),
    Column("purpose", String(250), nullable=False, default=""),
    Column("created_by", Id, ForeignKey("users.id"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("archived_at", BigInteger, nullable=True),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("last_message_at", BigInteger, nullable=True),
    Column("member_count", Integer, nullable=False, default=0),
)
Index(
    "uq_channels_name_key",
    channels.c.name_key,
    unique=True,
    sqlite_where=text("name_key IS NOT NULL"),
    postgresql_where=text("name_key IS NOT NULL"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("joined_at", BigInteger, nullable=False),
    Column("last_read_seq", BigInteger, nullable=False, default=0),
    Column("muted", Boolean, nullable=False, default=False),
    Column("starred", Boolean, nullable=False, default=False),
)
Index("ix_memberships_user_id", memberships.c.user_id, memberships.c.channel_id)

# On SQLite this table is stored WITHOUT ROWID under the primary key (channel_id, seq)
# (migration 0006, ADR 0018): a channel's messages sit together in the file, so a history page
# reads a few table pages instead of one per message. The metadata keeps PostgreSQL's shape
# (primary key id); on SQLite the message repository numbers ids itself (``_new_ids``, from
# the SQLite-only ``message_id_counter``).
messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_id", Id, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sender_id", Id, ForeignKey("users.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("edited_at", BigInteger, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("deleted_at", BigInteger, nullable=True),
    Column("deleted_by", Id, ForeignKey("users.id"), nullable=True),
    Column("thread_root_id", Id, ForeignKey("messages.id"), nullable=True),
    Column("reply_count", Integer, nullable=False, default=0),
    Column("last_reply_at", BigInteger, nullable=True),
    Column("reply_participant_ids", Text, nullable=False, default="[]"),
    Column("pinned_at", BigInteger, nullable=True),
    Column("pinned_by", Id, ForeignKey("users.id"), nullable=True),
    Column("mentions_channel", Boolean, nullable=False, default=False),
    Column("mentions_here", Boolean, nullable=False, default=False),
    Column("client_message_id", String(64), nullable=True),
    UniqueConstraint("channel_id", "seq"),
    UniqueConstraint("sender_id", "client_message_id"),
)
# History pages read top-level messages of one channel by seq: a partial index keeps it tight.
Index(
    "ix_messages_channel_top_level",
    messages.c.channel_id,
    messages.c.seq,
    sqlite_where=text("thread_root_id IS NULL"),
    postgresql_where=text("thread_root_id IS NULL"),
)
Index(
    "ix_messages_thread",
    messages.c.thread_root_id,
    messages.c.seq,
    sqlite_where=text("thread_root_id IS NOT NULL"),
    postgresql_where=text("thread_root_id IS NOT NULL"),
)
Index(
    "ix_messages_pinned",
    messages.c.channel_id,
    messages.c.pinned_at,
    sqlite_where=text("pinned_at IS NOT NULL"),
    postgresql_where=text("pinned_at IS NOT NULL"),
)

message_versions = Table(
    "message_versions",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("edited_at", BigInteger, nullable=False),
    Column("editor_id", Id, ForeignKey("users.id"), nullable=False),
)

mentions = Table(
    "mentions",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("channel_id", Id, nullable=False),
    Column("seq", BigInteger, nullable=False),
)
Index("ix_mentions_user_channel_seq", mentions.c.user_id, mentions.c.channel_id, mentions.c.seq)

reactions = Table(
    "reactions",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("emoji", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

# The outbox: every durable event, written in the transaction that caused it. ``position`` is
# the stream position clients resume from. AUTOINCREMENT on SQLite: positions must never be
# reused, even after old events are pruned.
events = Table(
    "events",
    metadata,
    Column("position", Id, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),
    Column("type", String(48), nullable=False),
    Column("channel_id", Id, nullable=True),
    Column("user_ids", Text, nullable=True),
    Column("all_members", Boolean, nullable=False, default=False),
    Column("joined", Text, nullable=True),
    Column("left", Text, nullable=True),
    Column("payload", LargeBinary, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_events_created_at", events.c.created_at)

# Who joined or left which channel at which stream position: lets a resuming client's replay
# apply exactly the membership it had at each event.
membership_changes = Table(
    "membership_changes",
    metadata,
    Column("position", Id, primary_key=True),
    Column("user_id", Id, primary_key=True),
    Column("channel_id", Id, primary_key=True),
    Column("joined", Boolean, nullable=False),
)
Index(
    "ix_membership_changes_user_position",
    membership_changes.c.user_id,
    membership_changes.c.position,
)

# --- files (migration 0002) ---------------------------------------------------------------
# An uploaded file. ``storage_key`` is generated (never derived from the user's file name);
# ``message_id`` is set when the uploader attaches it; deleting the message sets it back to
# NULL and stamps ``orphaned_at``. The sweep deletes unattached files after a grace period.
files = Table(
    "files",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uploader_id", Id, ForeignKey("users.id"), nullable=False),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("position", Integer, nullable=False, default=0),
    Column("name", String(255), nullable=False),
    Column("media_type", String(127), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(96), nullable=False, unique=True),
    Column("thumbnail_key", String(96), nullable=True),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("inline", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("attached_at", BigInteger, nullable=True),
    Column("orphaned_at", BigInteger, nullable=True),
)
Index("ix_files_message_id", files.c.message_id, files.c.position)
Index("ix_files_uploader_id", files.c.uploader_id)

# --- search (migration 0002) --------------------------------------------------------------
# One row per live message: its search terms (courtyard.domain.search_text) as the database
# indexes them. SQLite: space-separated terms, indexed by the FTS5 table ``search_fts``
# (external content, kept in step by triggers). PostgreSQL: a tsvector written term by term
# with positions, under a GIN index. Written in the transaction that writes the message.
SearchBody = TSVECTOR().with_variant(Text(), "sqlite")
search_documents = Table(
    "search_documents",
    metadata,
    Column(
        "message_id",
        Id,
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("body", SearchBody, nullable=False),
    Column("has_link", Boolean, nullable=False, default=False),
    # The message's channel (migration 0004), so visibility is checked without a join; the
    # body also ends with the channel's scope term (see repositories.search). Always written
    # by the index; nullable only because SQLite cannot add a NOT NULL column in place.
    Column("channel_id", Id, nullable=True),
)

# --- security (migration 0003) -------------------------------------------------------------
# The audit trail: append-only and hash-chained (courtyard.domain.audit). ``id`` is assigned by
# the appender under a lock (previous id + 1), never by a sequence, so the chain has no gaps.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at", BigInteger, nullable=False),
    Column("actor_id", BigInteger, nullable=True),
    Column("actor", String(64), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("user_agent", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_created_at", audit_log.c.created_at)
Index("ix_audit_log_actor_id", audit_log.c.actor_id, audit_log.c.id)
Index("ix_audit_log_action", audit_log.c.action, audit_log.c.id)

# A user's TOTP secret (encrypted at rest, see courtyard.auth.secretbox). ``confirmed_at`` is
# NULL during enrolment; ``last_used_step`` refuses a code's reuse within its window.
two_factor = Table(
    "two_factor",
    metadata,
    Column(
        "user_id",
        Id,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("secret", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("confirmed_at", BigInteger, nullable=True),
    Column("last_used_step", BigInteger, nullable=True),
)

# One-time recovery codes: SHA-256 of 80-bit random codes.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

# Failed sign-in and second-factor attempts per key ('login:<name>', 'ip:<address>',
# 'second:<user id>'), shared by every worker: progressive delays and temporary lockouts.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=True),
)

# Objects only one database has, created by migrations 0002, 0005 and 0006 and invisible to
# SQLAlchemy's metadata: SQLite's FTS5 table (with its shadow tables) and its message id
# counter, PostgreSQL's GIN index and its table of adjacent word pairs (``search_pairs``, see
# repositories.search).
SQLITE_ONLY_TABLES = frozenset(
    {
        "search_fts",
        "search_fts_data",
        "search_fts_idx",
        "search_fts_docsize",
        "search_fts_config",
        "message_id_counter",
    }
)
POSTGRESQL_ONLY_TABLES = frozenset({"search_pairs"})
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_search_documents_body"})
# SQLite's messages table is keyed by (channel_id, seq) (migration 0006); its ids are unique
# through this constraint, where PostgreSQL's primary key on id makes them unique.
SQLITE_ONLY_CONSTRAINTS = frozenset({"uq_messages_id"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic filter: leave the dialect-specific objects above out of comparisons."""
    if type_ == "table" and name in SQLITE_ONLY_TABLES | POSTGRESQL_ONLY_TABLES:
        return False
    if type_ == "unique_constraint" and name in SQLITE_ONLY_CONSTRAINTS:
        return False
    return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES)
