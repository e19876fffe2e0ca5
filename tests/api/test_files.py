"""Uploads, attachments, downloads and their access checks, previews, limits and the sweep."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.files_support import (
    animated_gif,
    image_bytes,
    jpeg_with_orientation,
    png_header_claiming,
    raw_multipart,
    upload,
    upload_ok,
    upload_raw,
)
from tests.support import DatabaseFactory, Org, Person, org_context

CSP_SANDBOX = "sandbox"


def content_path(file_id: int) -> str:
    return f"/api/v1/files/{file_id}/content"


async def post_with_files(
    person: Person, channel_id: int, file_ids: list[int], text: str = "see attached"
) -> dict[str, Any]:
    response = await person.post(
        f"/api/v1/channels/{channel_id}/messages", {"text": text, "file_ids": file_ids}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_upload_attach_download_round_trip(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    data = b"quarterly numbers\n" * 1000
    info = await upload_ok(alice, data, "Q3 report.txt")
    assert info["media_type"] == "text/plain"
    assert info["size"] == len(data)
    assert info["message_id"] is None
    assert info["name"] == "Q3 report.txt"

    message = await post_with_files(alice, channel["id"], [info["id"]])
    assert [a["id"] for a in message["attachments"]] == [info["id"]]
    assert message["attachments"][0]["name"] == "Q3 report.txt"
    history = (await bob.get(f"/api/v1/channels/{channel['id']}/messages")).json()
    assert history["messages"][-1]["attachments"][0]["size"] == len(data)

    response = await bob.get(content_path(info["id"]))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''Q3%20report.txt" in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert CSP_SANDBOX in response.headers["content-security-policy"]
    assert response.headers["content-length"] == str(len(data))
    assert (await bob.get(f"/api/v1/files/{info['id']}")).json()["message_id"] == message["id"]


async def test_range_requests_and_revalidation(alice: Person) -> None:
    data = bytes(range(256)) * 40
    info = await upload_ok(alice, data, "blob.bin")
    path = content_path(info["id"])
    part = await alice.get(path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = await alice.get(path, headers={"Range": "bytes=-5"})
    assert (tail.status_code, tail.content) == (206, data[-5:])
    rest = await alice.get(path, headers={"Range": f"bytes={len(data) - 3}-"})
    assert rest.content == data[-3:]
    beyond = await alice.get(path, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    several = await alice.get(path, headers={"Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, data)
    nonsense = await alice.get(path, headers={"Range": "lines=1-2"})
    assert nonsense.status_code == 200
    full = await alice.get(path)
    etag = full.headers["etag"]
    again = await alice.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    stale = await alice.get(path, headers={"Range": "bytes=0-0", "If-Range": '"other"'})
    assert stale.status_code == 200


async def test_every_file_route_checks_access_every_time(
    alice: Person, bob: Person, carol: Person, guest: Person, admin: Person
) -> None:
    private = await alice.create_channel(private=True, member_ids=[bob.id])
    info = await upload_ok(alice, image_bytes("PNG"), "secret.png")
    routes = [f"/api/v1/files/{info['id']}", content_path(info["id"])]
    routes.append(f"/api/v1/files/{info['id']}/thumbnail")

    async def statuses(person: Person) -> list[int]:
        return [(await person.get(route)).status_code for route in routes]

    # Before attaching: the uploader only.
    assert await statuses(alice) == [200, 200, 200]
    for other in (bob, carol, guest, admin):
        assert await statuses(other) == [404, 404, 404]
    missing = await bob.get("/api/v1/files/999999999/content")
    hidden = await bob.get(content_path(info["id"]))
    assert missing.json()["detail"] == hidden.json()["detail"]

    message = await post_with_files(alice, private["id"], [info["id"]])
    assert await statuses(bob) == [200, 200, 200]
    for outsider in (carol, guest, admin):
        assert await statuses(outsider) == [404, 404, 404]
    # Removed from the channel: the same URLs refuse at once.
    removed = await alice.delete(f"/api/v1/channels/{private['id']}/members/{bob.id}")
    assert removed.status_code == 204
    assert await statuses(bob) == [404, 404, 404]
    # Message deleted: the file is orphaned, even for its uploader.
    assert (await alice.delete(f"/api/v1/messages/{message['id']}")).status_code == 200
    assert await statuses(alice) == [404, 404, 404]


async def test_attaching_rules(alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    mine = await upload_ok(alice, b"mine", "a.txt")
    theirs = await upload_ok(bob, b"theirs", "b.txt")
    path = f"/api/v1/channels/{channel['id']}/messages"
    stolen = await alice.post(path, {"text": "x", "file_ids": [theirs["id"]]})
    assert stolen.status_code == 404
    assert stolen.json()["code"] == "file_not_found"
    twice = await alice.post(path, {"text": "x", "file_ids": [mine["id"], mine["id"]]})
    assert twice.status_code == 422
    too_many = await alice.post(path, {"text": "x", "file_ids": list(range(1, 12))})
    assert too_many.status_code == 422
    only_files = await post_with_files(alice, channel["id"], [mine["id"]], text="")
    assert only_files["text"] == ""
    again = await alice.post(path, {"text": "again", "file_ids": [mine["id"]]})
    assert again.status_code == 409
    assert again.json()["code"] == "file_already_attached"
    empty = await alice.post(path, {"text": "  "})
    assert empty.status_code == 422
    # Nothing was half-stored by the refusals.
    history = (await alice.get(path)).json()["messages"]
    assert [m["text"] for m in history] == [""]


async def test_concurrent_sends_attach_a_file_once(alice: Person) -> None:
    channel = await alice.create_channel()
    info = await upload_ok(alice, b"race", "race.txt")
    path = f"/api/v1/channels/{channel['id']}/messages"
    responses = await asyncio.gather(
        *(alice.post(path, {"text": f"try {n}", "file_ids": [info["id"]]}) for n in range(6))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409, 409, 409]


async def test_images_get_dimensions_and_clean_thumbnails(alice: Person) -> None:
    from PIL import Image

    png = await upload_ok(alice, image_bytes("PNG", (800, 600)), "photo.PNG")
    assert (png["media_type"], png["width"], png["height"]) == ("image/png", 800, 600)
    assert png["has_thumbnail"] is True
    assert png["inline"] is True
    thumb = await alice.get(f"/api/v1/files/{png['id']}/thumbnail")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "WEBP"
        assert max(image.size) == 400
    shown = await alice.get(content_path(png["id"]))
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"].startswith("inline;")
    forced = await alice.get(content_path(png["id"]), params={"download": "true"})
    assert forced.headers["content-disposition"].startswith("attachment;")

    # EXIF orientation 6 (rotate 90°): 200×100 stored, 100×200 shown; no EXIF kept.
    rotated = await upload_ok(alice, jpeg_with_orientation((200, 100), 6), "cam.jpg")
    assert (rotated["media_type"], rotated["width"], rotated["height"]) == ("image/jpeg", 100, 200)
    thumb = await alice.get(f"/api/v1/files/{rotated['id']}/thumbnail")
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.size == (100, 200)
        assert not image.getexif()
        assert "exif" not in image.info
        assert b"SpyCam" not in thumb.content

    gif = await upload_ok(alice, animated_gif(), "anim.gif")
    thumb = await alice.get(f"/api/v1/files/{gif['id']}/thumbnail")
    with Image.open(io.BytesIO(thumb.content)) as image:
        red, green, blue, *_ = image.convert("RGBA").getpixel((5, 5))
        assert red > 200 and blue < 50, "the first frame (red) is the preview"

    webp = await upload_ok(alice, image_bytes("WEBP"), "x.webp")
    assert (webp["media_type"], webp["has_thumbnail"]) == ("image/webp", True)


async def test_hostile_files_are_downloads_never_pages(alice: Person) -> None:
    cases = {
        "svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)'
            b"</script><foreignObject/></svg>",
            "image.svg",
            "image/svg+xml",
        ),
        "html": (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "page.png", "text/html"),
        "xhtml": (
            b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
            b"<script>alert(1)</script></html>",
            "page.xhtml",
            "text/html",
        ),
        "eps": (
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
            "x.png",
            "application/postscript",
        ),
        "pdf": (b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\n", "x.png", "application/pdf"),
    }
    for label, (data, name, expected) in cases.items():
        info = await upload_ok(alice, data, name)
        assert info["media_type"] == expected, label
        assert info["has_thumbnail"] is False, label
        assert info["inline"] is False, label
        response = await alice.get(content_path(info["id"]))
        assert response.headers["content-type"] == "application/octet-stream", label
        assert response.headers["content-disposition"].startswith("attachment;"), label
        assert response.headers["x-content-type-options"] == "nosniff", label
        assert CSP_SANDBOX in response.headers["content-security-policy"], label

    tiff = await upload_ok(alice, image_bytes("TIFF"), "really.png")
    assert (tiff["media_type"], tiff["has_thumbnail"]) == ("image/tiff", False)

    # A real JPEG that also carries HTML: previewed, but never served inline.
    polyglot = image_bytes("JPEG") + b"<html><script>alert(document.domain)</script></html>"
    info = await upload_ok(alice, polyglot, "cat.jpg")
    assert info["media_type"] == "image/jpeg"
    assert info["inline"] is False
    response = await alice.get(content_path(info["id"]))
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_decompression_bomb_is_refused_before_decoding(alice: Person) -> None:
    bomb = png_header_claiming(50_000, 50_000)
    assert len(bomb) < 1200
    started = asyncio.get_running_loop().time()
    info = await upload_ok(alice, bomb, "bomb.png")
    assert asyncio.get_running_loop().time() - started < 5
    assert info["media_type"] == "image/png"
    assert (info["width"], info["height"], info["has_thumbnail"]) == (None, None, False)
    assert info["inline"] is False
    response = await alice.get(content_path(info["id"]))
    assert response.headers["content-disposition"].startswith("attachment;")
    assert (await alice.get(f"/api/v1/files/{info['id']}/thumbnail")).status_code == 404


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../x", "x"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("/etc/passwd", "passwd"),
        ("%2e%2e%2f", "%2e%2e%2f"),
        ("..%c0%af", "%c0%af"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("..", "file"),
        ("  .hidden.  ", "hidden"),
        ("a\u202eexe.txt", "aexe.txt"),
        ("报告 2026.pdf", "报告 2026.pdf"),
        ('quote"s;semi.txt', 'quote"s;semi.txt'),
    ],
)
async def test_file_names_are_metadata_only(alice: Person, sent: str, stored: str) -> None:
    body = raw_multipart(b"filename*=UTF-8''" + _pct(sent).encode(), b"content")
    response = await upload_raw(alice, body)
    assert response.status_code == 201, response.text
    info = response.json()
    assert info["name"] == stored
    download = await alice.get(content_path(info["id"]))
    disposition = download.headers["content-disposition"]
    assert disposition.isascii()
    assert "\r" not in disposition and "\n" not in disposition
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert "/" not in fallback and "\\" not in fallback and '"' not in fallback


def _stored_under(root: Path, pattern: str = "*") -> set[Path]:
    return {path for path in root.rglob(pattern) if path.is_file()}


def _pct(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


async def test_hostile_names_in_raw_headers(alice: Person, workdir: Path) -> None:
    long_name = "a" * 1000 + ".txt"
    crlf = await upload_raw(alice, raw_multipart(b'filename="a\r\nX-Evil: 1.txt"', b"x"))
    # A raw CR LF ends the header line: the part has no usable file name any more.
    assert crlf.status_code in (201, 400, 422), crlf.text
    if crlf.status_code == 201:
        assert "\n" not in crlf.json()["name"]
    nul = await upload_raw(alice, raw_multipart(b'filename="a\x00.png"', b"x"))
    assert nul.status_code in (400, 422), nul.text
    long = await upload_raw(alice, raw_multipart(b'filename="' + long_name.encode() + b'"', b"x"))
    assert long.status_code == 201
    assert len(long.json()["name"]) == 255
    assert long.json()["name"].endswith(".txt")
    # Stored by generated key only: no file anywhere under the data directory uses the name.
    assert not _stored_under(workdir, "*aaaaaaaaaa*")


async def test_bad_upload_requests(alice: Person, org: Org) -> None:
    assert (
        await org.anonymous().post("/api/v1/files", files={"file": ("a", b"a")})
    ).status_code == 401
    as_json = await alice.post("/api/v1/files", {"file": "x"})
    assert as_json.status_code == 415
    no_file = await alice.client.post("/api/v1/files", data={"field": "value"}, files={})
    assert no_file.status_code in (400, 415, 422)
    only_field = await upload_raw(
        alice,
        b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\nvalue\r\n--b--\r\n',
        boundary="b",
    )
    assert only_field.status_code == 422
    assert only_field.json()["code"] == "no_file"
    truncated = await upload_raw(alice, raw_multipart(b'filename="t.txt"', b"data")[:-10])
    assert truncated.status_code == 400
    two = raw_multipart(b'filename="1.txt"', b"one").removesuffix(b"--xYzZY--\r\n")
    two += b'--xYzZY\r\nContent-Disposition: form-data; name="file"; filename="2.txt"\r\n\r\n'
    two += b"two\r\n--xYzZY--\r\n"
    assert (await upload_raw(alice, two)).status_code == 422
    gzipped = await upload_raw(
        alice, raw_multipart(b'filename="g.txt"', b"x"), **{"Content-Encoding": "gzip"}
    )
    assert gzipped.status_code == 415
    empty = await upload(alice, b"", "empty.txt")
    assert empty.status_code == 422
    assert empty.json()["code"] == "empty_file"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/files/..%2f..%2fetc%2fpasswd/content",
        "/api/v1/files/%2e%2e/content",
        "/api/v1/files/1%2f..%2f..%2f2/content",
        "/api/v1/files/..%c0%af/content",
        "/api/v1/files/1/content/../../../etc/passwd",
        "/api/v1/files/-1/content",
        "/api/v1/files/99999999999999999999999/content",
    ],
)
async def test_no_path_traversal_by_any_encoding(alice: Person, path: str) -> None:
    response = await alice.client.get(path)
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert b"root:" not in response.content


@pytest.fixture(scope="module")
async def small_org(databases: DatabaseFactory, workdir: Path) -> AsyncIterator[Org]:
    """An organisation with a 1 MiB file limit, 4 files per user, no PDFs."""
    async with org_context(
        databases,
        workdir,
        files={
            "max_file_mb": 1,
            "max_files_per_user": 4,
            "blocked_types": ["application/pdf"],
            "sweep_interval_minutes": 0,
        },
    ) as own:
        yield own


async def test_size_limit_is_exact_and_holds_for_chunked_bodies(small_org: Org) -> None:
    person = await small_org.person("sizer")
    limit = 1024 * 1024
    exact = await upload(person, b"a" * limit, "exact.txt")
    assert exact.status_code == 201, exact.text
    over = await upload(person, b"a" * (limit + 1), "over.txt")
    assert over.status_code == 413
    assert over.json()["code"] == "file_too_large"

    async def chunks(total: int) -> AsyncIterator[bytes]:
        head = b'--xYzZY\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n\r\n'
        yield head
        sent = 0
        while sent < total:
            piece = min(65536, total - sent)
            yield b"b" * piece
            sent += piece
        yield b"\r\n--xYzZY--\r\n"

    chunked_ok = await upload_raw(person, chunks(limit))
    assert chunked_ok.status_code == 201, chunked_ok.text
    assert chunked_ok.json()["size"] == limit
    chunked_over = await upload_raw(person, chunks(limit + 1))
    assert chunked_over.status_code == 413
    huge = await upload_raw(person, chunks(16 * limit))
    assert huge.status_code == 413


async def test_quota_and_blocked_types(small_org: Org) -> None:
    person = await small_org.person("hoarder")
    pdf = await upload(person, b"%PDF-1.4\n%%EOF\n", "doc.txt")
    assert pdf.status_code == 422
    assert pdf.json()["code"] == "file_type_not_allowed"
    results = [await upload(person, f"tiny {n}".encode(), f"{n}.txt") for n in range(6)]
    assert [r.status_code for r in results] == [201, 201, 201, 201, 409, 409]
    assert results[-1].json()["code"] == "quota_exceeded"


async def test_sweep_deletes_unattached_and_orphaned_files_after_grace(small_org: Org) -> None:
    person = await small_org.person("sweeper")
    files = small_org.server.services.files
    channel = await person.create_channel()
    kept = await upload_ok(person, b"kept", "kept.txt")
    loose = await upload_ok(person, b"loose", "loose.txt")
    doomed = await upload_ok(person, b"doomed", "doomed.txt")
    await post_with_files(person, channel["id"], [kept["id"]])
    message = await post_with_files(person, channel["id"], [doomed["id"]])
    assert (await person.delete(f"/api/v1/messages/{message['id']}")).status_code == 200

    assert await files.sweep() == 0  # within the grace period: nothing goes
    assert (await person.get(content_path(loose["id"]))).status_code == 200
    later = datetime.now(UTC) + timedelta(hours=25)
    store_root = Path(files.store.root)  # type: ignore[attr-defined]
    before = _stored_under(store_root)
    swept = await files.sweep(now=later)
    assert swept >= 2
    after = _stored_under(store_root)
    assert len(before - after) >= 2
    assert (await person.get(content_path(loose["id"]))).status_code == 404
    assert (await person.get(content_path(kept["id"]))).status_code == 200


async def test_file_names_are_searchable(alice: Person) -> None:
    channel = await alice.create_channel()
    info = await upload_ok(alice, b"numbers", "Quarterly-Report_2026.xlsx")
    message = await post_with_files(alice, channel["id"], [info["id"]], text="see attached")
    await alice.send(channel["id"], "no files here")
    scope = f"in:#{channel['name']}"
    page = (await alice.get("/api/v1/search", params={"q": f"quarterly report {scope}"})).json()
    assert [r["message"]["id"] for r in page["results"]] == [message["id"]]
    assert page["results"][0]["matched_file_ids"] == [info["id"]]
    files_only = (await alice.get("/api/v1/search", params={"q": f"{scope} has:file"})).json()
    assert [r["message"]["id"] for r in files_only["results"]] == [message["id"]]
    assert (await alice.delete(f"/api/v1/messages/{message['id']}")).status_code == 200
    gone = (await alice.get("/api/v1/search", params={"q": f"quarterly {scope}"})).json()
    assert gone["results"] == []


async def test_a_large_upload_streams_with_flat_memory(alice: Person) -> None:
    import psutil

    size = 48 * 1024 * 1024
    process = psutil.Process()

    async def body() -> AsyncIterator[bytes]:
        yield b'--xYzZY\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        block = bytes(range(256)) * 256  # 64 KiB
        for _ in range(size // len(block)):
            yield block
        yield b"\r\n--xYzZY--\r\n"

    before = process.memory_info().rss
    response = await upload_raw(alice, body())
    grown = process.memory_info().rss - before
    assert response.status_code == 201, response.text
    assert response.json()["size"] == size
    # The server runs in this process: holding the file would add 48 MiB at least.
    assert grown < 24 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"
    head = await alice.get(content_path(response.json()["id"]), headers={"Range": "bytes=0-3"})
    assert head.content == bytes(range(4))
