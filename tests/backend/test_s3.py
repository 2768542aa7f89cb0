"""S3Backend pieces that need no server: the URL parser and secret-free endpoint names."""

from __future__ import annotations

import pytest

from vfs.backend.s3 import _public_endpoint, parse_s3_url
from vfs.errors import UsageError


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/") == ("bucket", "")
    assert parse_s3_url("s3://bucket/vol/a") == ("bucket", "vol/a/")
    assert parse_s3_url("s3://bucket/vol/a/") == ("bucket", "vol/a/")
    for bad in ["bucket/x", "http://bucket/x", "s3:///x", "s3://key:secret@bucket/x", "s3://b/a//c", "s3://b/x?y=1"]:
        with pytest.raises(UsageError):
            parse_s3_url(bad)


def test_endpoint_in_messages_has_no_credentials() -> None:
    assert _public_endpoint("http://user:pw@127.0.0.1:9000/") == "http://127.0.0.1:9000/"
    assert _public_endpoint("https://s3.example.com") == "https://s3.example.com"
    assert _public_endpoint(None) == "AWS"
