"""Objects in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Supabase Storage's S3 endpoint) via boto3.

Endpoint, region and credentials come from the standard AWS sources, read by botocore itself: AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
and also a profile, web identity (EKS/KubeRay service accounts) or instance metadata.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from cascade.store.base import ByteRange, NotModified, ObjectMissing, Opened, RangeNotSatisfiable
from cascade.store.keys import is_servable

_IMMUTABLE = "public, max-age=31536000, immutable"


def _endpoint(environ: Mapping[str, str]) -> str | None:
    return (environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or "").strip() or None


_session: Any = None
_session_lock = threading.Lock()


def _shared_session() -> Any:
    # One session per process: a new one reloads botocore's service models (~0.5 s); its clients are thread-safe.
    global _session
    with _session_lock:
        if _session is None:
            import boto3

            _session = boto3.session.Session()
        return _session


def make_client(timeout_s: float, environ: Mapping[str, str] = os.environ) -> Any:
    from botocore.config import Config

    endpoint = _endpoint(environ)
    region = (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "").strip() or None
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=32,
        # SigV4 everywhere, presigned URLs included: R2 and Supabase accept nothing older.
        signature_version="s3v4",
        # botocore >= 1.36 adds CRC checksums to every upload by default, which several S3-compatible stores
        # refuse (boto/boto3#4392); send them only where the API requires one.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Every S3-compatible server takes path-style requests; virtual-hosted ones need DNS per bucket.
        s3={"addressing_style": "path"} if endpoint else {},
    )
    # A custom endpoint with no region (MinIO, moto) still needs one to sign with.
    return _shared_session().client(
        "s3", region_name=region or ("us-east-1" if endpoint else None), endpoint_url=endpoint, config=config
    )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _header(exc: Exception, name: str) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(name, ""))


class S3Store:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.client = bucket, client
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def describe(self) -> dict[str, str]:
        endpoint = self.client.meta.endpoint_url
        return {"kind": "s3", "bucket": self.bucket, "prefix": self.prefix, "endpoint": endpoint}

    def put(self, name: str, data: bytes, mime: str, sha256: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.prefix + name,
            Body=data,
            ContentType=mime,
            CacheControl=_IMMUTABLE,
            Metadata={"sha256": sha256},
        )

    def open(self, name: str, byte_range: ByteRange | None = None, if_none_match: str | None = None) -> Opened:
        from botocore.exceptions import ClientError

        if not is_servable(name):
            raise ObjectMissing(name)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + name}
        if byte_range is not None:
            args["Range"] = byte_range.header()
        if if_none_match is not None:
            args["IfNoneMatch"] = if_none_match
        try:
            response = self.client.get_object(**args)
        except ClientError as exc:
            code = _code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectMissing(name) from None
            if code in ("304", "NotModified"):
                raise NotModified(_header(exc, "etag")) from None
            if code == "InvalidRange":
                raise RangeNotSatisfiable(self._size(name)) from None
            raise
        length = int(response["ContentLength"])
        content_range = response.get("ContentRange")  # "bytes 0-99/1234" when a range was served
        if content_range:
            span, _, total = content_range.removeprefix("bytes ").partition("/")
            first, _, last = span.partition("-")
            start, end, size = int(first), int(last), int(total)
        else:
            start, end, size = 0, length - 1, length
        return Opened(response["ETag"], size, start, end, response["Body"])

    def _size(self, name: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)["ContentLength"])

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def names_between(self, after: str, before: str) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, StartAfter=self.prefix + after
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if name >= before:
                    return
                if "/" not in name:
                    yield name

    def clean_partial(self, before: datetime) -> int:
        # A single PUT is all or nothing in S3: a write that dies leaves nothing behind.
        return 0

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def presign(self, name: str, ttl_s: int) -> str | None:
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + name}, ExpiresIn=ttl_s
            )
        )
