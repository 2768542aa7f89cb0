"""A backend on an S3-compatible object store (AWS, MinIO, Garage, Ceph), through boto3.

The only importer of boto3 and botocore. One client is shared by all threads (boto3 clients are
thread-safe; sessions are not). Addressing is path-style (`ENDPOINT/BUCKET/KEY`) so that endpoints
without wildcard DNS work, and nothing beyond plain GET/PUT/HEAD/DELETE/ListObjectsV2 is used (no
versioning, no multipart): Garage has all of it. The one conditional request, a PUT with
`If-None-Match: *` (`put_if_absent`), is used only where a probe found the endpoint honours it.
Credentials come from boto3's default chain (environment, shared files, profile, instance role); they
never reach a message or a log line.

botocore's own retries are off: `vfs.backend.retry` retries, with one policy for every backend.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import urllib3.exceptions

from vfs.backend.base import Backend, check_key, check_range
from vfs.errors import BackendDenied, BackendError, BackendNotFound, BackendUnavailable, UsageError

log = logging.getLogger(__name__)

# Error codes of a throttled or momentarily failing service (AWS and S3-compatible servers).
_TRANSIENT_CODES = {
    "InternalError", "ServiceUnavailable", "SlowDown", "Throttling", "ThrottlingException",
    "RequestThrottled", "RequestTimeout", "RequestTimeTooSkewed", "RequestLimitExceeded", "TooManyRequests",
    "BandwidthLimitExceeded", "OperationAborted",
}  # fmt: skip
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_DENIED_CODES = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                 "InvalidToken", "AllAccessDisabled", "AccountProblem"}  # fmt: skip

# Failures below the HTTP layer, or a body cut short: the request may well succeed again.
_TRANSIENT_EXCEPTIONS = (
    botocore.exceptions.ConnectionError,  # includes EndpointConnectionError, ConnectTimeoutError
    botocore.exceptions.HTTPClientError,  # includes ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.FlexibleChecksumError,  # a body damaged in transit
    botocore.exceptions.ChecksumError,
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """`(bucket, prefix)` of `s3://BUCKET/PREFIX`; the prefix is "" or ends with one "/".

    Raises:
        UsageError: `url` is not of that form.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
        raise UsageError(f"remote must look like s3://BUCKET/PREFIX, not {url!r}")
    bucket = parsed.netloc
    if "@" in bucket or ":" in bucket:
        raise UsageError(f"remote must look like s3://BUCKET/PREFIX (no credentials or port), not {url!r}")
    prefix = parsed.path.strip("/")
    if prefix:
        check_key(prefix)
        prefix += "/"
    return bucket, prefix


def check_endpoint_url(endpoint_url: str) -> None:
    """UsageError unless `endpoint_url` looks like http(s)://HOST[:PORT][/PATH] (boto3 would refuse it later,
    or send the requests somewhere odd)."""
    parts = urllib.parse.urlsplit(endpoint_url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.query or parts.fragment:
        shown = re.sub(r"//[^/@]*@", "//", endpoint_url)  # never a user:password@ it may carry
        raise UsageError(f"endpoint URL must look like http(s)://HOST[:PORT], not {shown!r}")


def _public_endpoint(endpoint_url: str | None) -> str:
    """The endpoint for messages: without any user:password@ an endpoint URL may carry."""
    if endpoint_url is None:
        return "AWS"
    parts = urllib.parse.urlsplit(endpoint_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class S3Backend(Backend):
    """Objects under `prefix` in `bucket`. Thread-safe: one client, a pool of `connections`.

    Args:
        url: `s3://BUCKET/PREFIX`.
        endpoint_url: the S3 endpoint (e.g. `http://127.0.0.1:9000`); None for AWS.
        region: the region to sign requests for; None for boto3's default (or us-east-1).
        connections: size of the HTTP connection pool; at least the number of threads using it.
        connect_timeout, read_timeout: seconds before a connection attempt or a silent read fails (transient).
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        connections: int = 10,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        if endpoint_url is not None:
            check_endpoint_url(endpoint_url)
        self.endpoint = _public_endpoint(endpoint_url)
        self.url = f"s3://{self.bucket}/{self.prefix} at {self.endpoint}"
        config = botocore.config.Config(
            region_name=region,
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            tcp_keepalive=True,
        )
        try:
            session = boto3.session.Session()
            self._client: Any = session.client(
                "s3", endpoint_url=endpoint_url, region_name=region or session.region_name or "us-east-1",
                config=config,
            )
        except (botocore.exceptions.BotoCoreError, ValueError) as e:
            raise BackendError(f"cannot set up a client for {self.url}: {e}") from None
        if endpoint_url is None:
            # Which AWS endpoint (region, environment) the requests go to: a user who forgot
            # --endpoint-url sees where they went.
            self.endpoint = f"AWS ({_public_endpoint(self._client.meta.endpoint_url)})"
            self.url = f"s3://{self.bucket}/{self.prefix} at {self.endpoint}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _error(self, op: str, key: str, e: Exception) -> BackendError:
        """The vfs error for botocore's `e`, naming the operation, the object and the endpoint."""
        what = f"s3 {op} {self.bucket}/{self.prefix}{key} at {self.endpoint}"
        if isinstance(e, botocore.exceptions.ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = _status(e)
            reason = f"{code or status}: {err.get('Message') or 'no message'}"
            if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
                return BackendNotFound(f"{what}: no such object")
            if code in _DENIED_CODES or status == 403:
                return BackendDenied(f"{what}: access denied ({reason}); check the credentials and bucket policy")
            if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
                return BackendUnavailable(f"{what}: {reason}")
            if code == "NoSuchBucket":
                return BackendError(f"{what}: bucket {self.bucket} does not exist")
            return BackendError(f"{what}: {reason}")
        if isinstance(e, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
            return BackendDenied(f"{what}: no usable credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                                 "a profile, or an instance role)")
        if isinstance(e, _TRANSIENT_EXCEPTIONS):
            return BackendUnavailable(f"{what}: {type(e).__name__}: {e}")
        return BackendError(f"{what}: {type(e).__name__}: {e}")

    def put(self, key: str, data: bytes) -> None:
        k = self._key(key)
        try:
            self._client.put_object(Bucket=self.bucket, Key=k, Body=bytes(data))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise self._error("put", key, e) from None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        k = self._key(key)
        try:
            self._client.put_object(Bucket=self.bucket, Key=k, Body=bytes(data), IfNoneMatch="*")
        except botocore.exceptions.ClientError as e:
            # 412: an object is there. 409: a conditional PUT to the same key is in progress (AWS).
            if _status(e) in (409, 412) or e.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise self._error("put", key, e) from None
        except botocore.exceptions.BotoCoreError as e:
            raise self._error("put", key, e) from None
        return True

    def _read_body(self, op: str, key: str, *, byte_range: tuple[int, int] | None = None) -> bytes:
        kwargs = {} if byte_range is None else {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"}
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key), **kwargs)
            body = response["Body"]  # not `with`: StreamingBody.__enter__ hands out the raw stream, unchecked
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except botocore.exceptions.ClientError as e:
            # 416: the range starts at or past the end (S3 says so only for an existing object).
            if byte_range is not None and _status(e) == 416:
                return b""
            raise self._error(op, key, e) from None
        except botocore.exceptions.BotoCoreError as e:
            raise self._error(op, key, e) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            # A body cut short mid-read (the connection reset after the headers): botocore lets
            # urllib3's ProtocolError through unwrapped.
            raise BackendUnavailable(
                f"s3 {op} {self.bucket}/{self.prefix}{key} at {self.endpoint}: body read failed ({e})"
            ) from None
        # botocore checks this too; a short body must never pass for the object, so check again.
        expected = response.get("ContentLength")
        if expected is not None and len(data) != expected:
            raise BackendUnavailable(
                f"s3 {op} {self.bucket}/{self.prefix}{key} at {self.endpoint}: "
                f"body truncated ({len(data)} of {expected} bytes)"
            )
        return data

    def get(self, key: str) -> bytes:
        return self._read_body("get", key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        if length == 0:
            if self.head(key) is None:
                raise BackendNotFound(f"s3 get {self.bucket}/{self.prefix}{key} at {self.endpoint}: no such object")
            return b""
        return self._read_body("get", key, byte_range=(offset, offset + length))

    def head(self, key: str) -> int | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            err = self._error("head", key, e)
            if isinstance(err, BackendNotFound):
                return None
            raise err from None
        return int(response["ContentLength"])

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        while True:
            try:
                page = self._client.list_objects_v2(**kwargs)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                raise self._error("list", prefix, e) from None
            for item in page.get("Contents", ()):
                yield item["Key"][len(self.prefix) :]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            kwargs["ContinuationToken"] = token

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            err = self._error("delete", key, e)
            if not isinstance(err, BackendNotFound):
                raise err from None

    def close(self) -> None:
        self._client.close()


def _status(e: botocore.exceptions.ClientError) -> int | None:
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None
