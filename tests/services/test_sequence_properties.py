"""Property: concurrent sends give each channel gap-free sequence numbers and honour keys.

For random batches of concurrent sends (several people, several channels, thread replies,
idempotency keys that repeat, sometimes in another channel), once every request has answered:
- each channel's messages carry exactly the sequence numbers 1..n, no gap, no duplicate;
- each (sender, key) produced exactly one message; repeats in its channel replay it (200) and
  repeats in another channel are refused (409);
- retrying any key afterwards returns the same message and changes nothing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Person, unique

PEOPLE = 3
MAX_CHANNELS = 3
KEYS = 3


@dataclass(frozen=True)
class Send:
    """One planned request."""

    sender: int
    channel: int
    key: int | None
    reply: bool


sends = st.lists(
    st.builds(
        Send,
        sender=st.integers(0, PEOPLE - 1),
        channel=st.integers(0, MAX_CHANNELS - 1),
        key=st.none() | st.integers(0, KEYS - 1),
        reply=st.booleans(),
    ),
    min_size=1,
    max_size=14,
)


async def channel_messages(person: Person, channel_id: int, root_id: int) -> list[dict[str, Any]]:
    """Every message of a channel: top-level history plus the replies of its one thread."""
    history = await person.get(f"/api/v1/channels/{channel_id}/messages", params={"limit": 200})
    thread = await person.get(f"/api/v1/messages/{root_id}/thread", params={"limit": 200})
    assert history.status_code == thread.status_code == 200
    assert not history.json()["has_more_before"] and not thread.json()["replies"]["has_more_before"]
    return [*history.json()["messages"], *thread.json()["replies"]["messages"]]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=sends)
async def test_concurrent_sends_keep_sequences_gapless_and_keys_unique_when_keys_repeat(
    alice: Person, bob: Person, carol: Person, plan: list[Send]
) -> None:
    people = (alice, bob, carol)
    # Fresh channels and keys per example: keys are unique per sender across the installation.
    run = unique("ex")
    channels = [
        (await alice.create_channel(member_ids=[bob.id, carol.id]))["id"]
        for _ in range(MAX_CHANNELS)
    ]
    roots = [(await alice.send(cid, "root"))["id"] for cid in channels]

    def body(step: int, send: Send) -> dict[str, Any]:
        fields: dict[str, Any] = {"text": f"{run} step {step}"}
        if send.key is not None:
            fields["client_message_id"] = f"{run}-k{send.key}"
        if send.reply:
            fields["thread_root_id"] = roots[send.channel]
        return fields

    responses: list[httpx.Response] = await asyncio.gather(
        *(
            people[send.sender].post(
                f"/api/v1/channels/{channels[send.channel]}/messages", body(step, send)
            )
            for step, send in enumerate(plan)
        )
    )

    # Every request answered with a success or, for a key reused elsewhere, a 409.
    by_key: dict[tuple[int, int], list[tuple[Send, httpx.Response]]] = defaultdict(list)
    for send, response in zip(plan, responses, strict=True):
        assert response.status_code in (200, 201, 409), response.text
        if send.key is None:
            assert response.status_code == 201, response.text
        else:
            by_key[(send.sender, send.key)].append((send, response))

    # Each (sender, key): one 201; same channel replays it, another channel is refused.
    winners: dict[tuple[int, int], dict[str, Any]] = {}
    for sender_key, attempts in by_key.items():
        created = [r.json() for _, r in attempts if r.status_code == 201]
        assert len(created) == 1, [r.text for _, r in attempts]
        winner = winners[sender_key] = created[0]
        for send, response in attempts:
            if channels[send.channel] == winner["channel_id"]:
                assert response.status_code in (200, 201)
                assert response.json()["id"] == winner["id"]
            else:
                assert response.status_code == 409
                assert response.json()["code"] == "client_message_id_reused"

    # Per channel: sequence numbers exactly 1..n, and the stored messages are the created ones.
    created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    stored_ids: set[int] = set()
    for cid, root_id in zip(channels, roots, strict=True):
        stored = await channel_messages(bob, cid, root_id)
        seqs = sorted(m["seq"] for m in stored)
        assert seqs == list(range(1, len(stored) + 1)), (cid, seqs)
        channel = (await bob.get(f"/api/v1/channels/{cid}")).json()["channel"]
        assert channel["last_seq"] == len(stored)
        replies = [m for m in stored if m["thread_root_id"] == root_id]
        root = next(m for m in stored if m["id"] == root_id)
        assert root["reply_count"] == len(replies)
        stored_ids.update(m["id"] for m in stored if m["id"] != root_id)
        for (sender, key), winner in winners.items():
            keyed = [
                m
                for m in stored
                if m["sender_id"] == people[sender].id and m["client_message_id"] == f"{run}-k{key}"
            ]
            assert len(keyed) == (1 if winner["channel_id"] == cid else 0)
    assert stored_ids == created_ids

    # Retrying any key later returns the same message and allocates nothing.
    for (sender, key), winner in winners.items():
        retry = await people[sender].post(
            f"/api/v1/channels/{winner['channel_id']}/messages",
            {"text": "retry", "client_message_id": f"{run}-k{key}"},
        )
        assert retry.status_code == 200
        assert retry.json()["id"] == winner["id"]
        assert retry.json()["text"] == winner["text"]
    for cid, root_id in zip(channels, roots, strict=True):
        channel = (await bob.get(f"/api/v1/channels/{cid}")).json()["channel"]
        assert channel["last_seq"] == len(await channel_messages(bob, cid, root_id))
