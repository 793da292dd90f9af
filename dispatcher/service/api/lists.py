"""Lists of numbers over HTTP: ``POST /v1/lists`` (operators; audited) uploads a list, CSV
(``text/csv``) or a JSON array of numbers (``application/json``), and answers its check report
and id (:class:`dispatcher.engine.numberlists.ListReport`); ``GET /v1/lists/{id}`` (viewers)
says what a stored list holds (404 for one never uploaded or removed after ``[lists]
retention_days``: :mod:`dispatcher.engine.retention`). A campaign names the id as
``audience_list``.

The body is streamed to a temporary file, not held in memory: this route alone is not bound by
``[api] request_max_body_size`` but by :data:`dispatcher.domain.numberlist.MAX_BYTES` and
:data:`~dispatcher.domain.numberlist.MAX_ROWS` (413 beyond either, nothing stored).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from msgspec import Meta

from dispatcher.domain import numberlist, textcheck
from dispatcher.domain.errors import AudienceError, InputError, NotFound, TooLarge
from dispatcher.domain.numberlist import MAX_BYTES, MAX_ROWS
from dispatcher.engine import numberlists
from dispatcher.engine.numberlists import ListReport
from dispatcher.service.api.context import (
    AUTH,
    BEARER,
    OPERATOR,
    VIEWER,
    Services,
    audited_call,
    errors,
    services_of,
)
from dispatcher.store.base import AudienceMeta


class ListInfo(msgspec.Struct, frozen=True):
    """A stored list: its id, the name it was uploaded with, when, and its recipients."""

    id: str
    name: str
    created_at: dt.datetime
    recipients: int
    zalo: int
    email: int
    by_district: dict[str, int]
    by_kind: dict[str, int]


async def _receive(request: Request[Any, Any, Any], path: Path, fmt: str) -> bytes:
    """Stream the body into ``path``; the digest of its bytes. TooLarge beyond the caps."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise TooLarge(f"{int(declared):,} bytes, more than the {MAX_BYTES:,} a list may take: "
                       f"split the list", field="body")
    digest = numberlists.new_digest()
    size = lines = 0
    with path.open("wb") as sink:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BYTES:
                raise TooLarge(f"more than the {MAX_BYTES:,} bytes a list may take: split the "
                               f"list", field="body")
            lines += chunk.count(b"\n")
            if fmt == numberlist.CSV and lines > MAX_ROWS + 1:  # the header, then the rows
                raise TooLarge(f"more than {MAX_ROWS:,} rows: split the list", field="body")
            digest.update(chunk)
            sink.write(chunk)
    if size == 0:
        raise InputError("empty: give a CSV with an msisdn column or a JSON array of numbers",
                         field="body")
    return digest.digest()


async def _import(s: Services, path: Path, fmt: str, version: str, name: str) -> ListReport:
    try:
        return await numberlists.import_list(
            path, fmt, s.store, numberlist.validator(s.numbering, s.province), version=version,
            name=name, chunk_size=s.settings.engine.chunk_size)
    except AudienceError as exc:  # the message names the temporary file: say "body" instead
        if exc.field:
            raise
        raise AudienceError(str(exc).replace(f"{path}: ", ""), field="body") from None


@post("/v1/lists", guards=OPERATOR, tags=["lists"], status_code=201,
      request_max_body_size=None,  # streamed to disk, bound by MAX_BYTES in _receive
      summary=f"Upload a list of numbers (text/csv with an msisdn column, or application/json: "
              f"an array of numbers; at most {MAX_BYTES // 2**20} MiB and {MAX_ROWS:,} rows), "
              "checked as an audience file; answers the report (rejected rows by line) and the "
              "list's id for a campaign's `audience_list`",
      opt={"query": ["name"]}, security=BEARER, responses=errors(400, *AUTH, 413))
async def upload_list(request: Request[Any, Any, Any], state: State,
                      name: Annotated[str, QueryParameter(max_length=200)] = "") -> ListReport:
    s = services_of(state)
    textcheck.check_title(name, "name")
    fmt = numberlist.format_of(request.headers.get("content-type", ""))
    with tempfile.TemporaryDirectory(prefix="loa-list-") as folder:
        path = Path(folder) / "body"
        version = numberlists.list_id(await _receive(request, path, fmt))
        detail = {"name": name, "format": fmt, "bytes": path.stat().st_size}
        return await audited_call(request, "list.upload", version,
                              _import(s, path, fmt, version, name), detail,
                              after=lambda r: {"rows": r.rows, "valid": r.valid,
                                               "duplicates": r.duplicates,
                                               "rejected": r.rejected})


def _info(meta: AudienceMeta) -> ListInfo:
    districts: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for g in meta.groups:
        districts[g.district or "(none)"] = districts.get(g.district or "(none)", 0) + g.count
        kinds[g.kind] = kinds.get(g.kind, 0) + g.count
    return ListInfo(meta.version, meta.source, meta.created_at, meta.count,
                    sum(g.zalo for g in meta.groups), sum(g.email for g in meta.groups),
                    districts, kinds)


@get("/v1/lists", guards=VIEWER, tags=["lists"],
     summary="The uploaded lists, newest first (`limit`: 1-1000, default 100)",
     opt={"query": ["limit"]}, security=BEARER, responses=errors(400, *AUTH))
async def all_lists(state: State, limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100
                    ) -> list[ListInfo]:
    return [_info(m) for m in await services_of(state).store.audiences.kept(limit)]


@get("/v1/lists/{list_id:str}", guards=VIEWER, tags=["lists"],
     summary="A stored list: its name, when it was uploaded, its recipients by district and kind"
             " (404: never uploaded, or removed after [lists] retention_days)",
     security=BEARER, responses=errors(400, *AUTH, 404))
async def get_list(state: State, list_id: FromPath[Annotated[str, Meta(max_length=100)]]
                   ) -> ListInfo:
    s = services_of(state)
    try:
        meta = await numberlists.list_meta(s.store, list_id, "list_id")
    except InputError:
        raise NotFound(f"no list {list_id!r}: {_why(s.settings.lists.retention_days)}"
                       ) from None
    return _info(meta)


def _why(days: float) -> str:
    if not days:
        return "never uploaded"
    return (f"never uploaded, or removed {days:g} days after its upload ([lists] "
            f"retention_days) once no campaign in progress named it")


ROUTES = [upload_list, all_lists, get_list]
SCHEMA_TYPES = [ListReport, ListInfo]
