"""Uploading files and downloading them (content and thumbnails)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Stream

from courtyard.api.deps import AppServices, CurrentActor, Id
from courtyard.api.errors import problem
from courtyard.api.file_responses import (
    FILE_CSP,
    RangeNotSatisfiable,
    content_disposition,
    parse_range,
)
from courtyard.api.uploads import open_file_part
from courtyard.domain.files import FileInfo, served_type


class FileStream(Stream):
    """A streamed file whose own media type wins (Litestar's Stream prefers the route's)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        """As Stream's, with this response's media type."""
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


Download = Annotated[
    bool, QueryParameter(description="Always send as an attachment, even a safe image.")
]


class FilesController(Controller):
    """Files: upload, then attach with ``file_ids`` when posting a message."""

    path = "/api/v1/files"
    tags = ["files"]

    @post(
        "/",
        summary="Upload a file",
        status_code=201,
        request_max_body_size=None,  # bounded by the files settings while streaming
    )
    async def upload(
        self, request: Request[Any, Any, State], actor: CurrentActor, services: AppServices
    ) -> FileInfo:
        """``multipart/form-data`` with one part carrying a file name. The type is sniffed
        from the content; the file stays private to you until you attach it to a message."""
        part = await open_file_part(request, services.files.max_upload_bytes)
        return await services.files.upload(actor, part.name, part.content)

    @get("/{file_id:int}", summary="A file's metadata")
    async def info(self, file_id: Id, actor: CurrentActor, services: AppServices) -> FileInfo:
        """404 unless you uploaded it (unattached) or can see the message carrying it."""
        return await services.files.get_file(actor, file_id)

    @get("/{file_id:int}/content", summary="Download a file", media_type="application/octet-stream")
    async def content(
        self,
        file_id: Id,
        request: Request[Any, Any, State],
        actor: CurrentActor,
        services: AppServices,
        download: Download = False,
    ) -> Response[Any]:
        """Safe raster images inline, everything else as an attachment; byte ranges."""
        return await _serve(request, actor, services, file_id, thumbnail=False, force=download)

    @get(
        "/{file_id:int}/thumbnail",
        summary="A file's thumbnail (WebP)",
        media_type="image/webp",
    )
    async def thumbnail(
        self,
        file_id: Id,
        request: Request[Any, Any, State],
        actor: CurrentActor,
        services: AppServices,
    ) -> Response[Any]:
        """Images only; at most the configured size on each side, without metadata."""
        return await _serve(request, actor, services, file_id, thumbnail=True, force=False)


async def _serve(
    request: Request[Any, Any, State],
    actor: Any,
    services: Any,
    file_id: int,
    *,
    thumbnail: bool,
    force: bool,
) -> Response[Any]:
    served = await services.files.open_download(actor, file_id, thumbnail=thumbnail)
    inline = served.inline and not force
    headers = {
        "Content-Disposition": content_disposition(
            served.info.name if not thumbnail else f"{served.info.name}.webp", inline=inline
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "private, no-cache",
        "ETag": served.etag,
        "Accept-Ranges": "bytes",
    }
    media_type = served.media_type if inline else served_type(served.media_type)
    if request.headers.get("if-none-match") == served.etag:
        return Response(content=b"", status_code=304, headers=headers, media_type=media_type)
    if_range = request.headers.get("if-range")
    try:
        wanted = (
            parse_range(request.headers.get("range"), served.size)
            if if_range is None or if_range == served.etag
            else None
        )
    except RangeNotSatisfiable:
        response = problem(
            416,
            "range_not_satisfiable",
            "the requested range is outside the file",
            instance=request.url.path,
            headers={"Content-Range": f"bytes */{served.size}"},
        )
        return response
    start, end, status = 0, served.size, 200
    if wanted is not None:
        start, end, status = wanted.start, wanted.end, 206
        headers["Content-Range"] = wanted.content_range
    headers["Content-Length"] = str(end - start)
    return FileStream(
        services.files.read(served.key, start, end),
        status_code=status,
        media_type=media_type,
        headers=headers,
    )
