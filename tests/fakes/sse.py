"""Server-Sent Events read the way a browser's EventSource reads them (WHATWG HTML, "Server-sent events": a blank
line dispatches the fields gathered so far if there is data; lines starting with ':' are comments)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def sse_fields(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Each dispatched event's fields; each comment line as {"comment": text}."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif not line:
            if "data" in fields:
                yield fields
            fields = {}
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[key] = fields[key] + "\n" + value if key == "data" and "data" in fields else value


def job_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """A job stream's events as {"id", "event", **data}, comments left out."""
    for fields in sse_fields(lines):
        if "comment" not in fields:
            yield {"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])}
