"""History specs and durations: one parser for `f@-1d12h` and `vfs prune --keep-within 1d12h`."""

from __future__ import annotations

import pytest

from vfs.errors import UsageError
from vfs.fs.history import check_snapshot_name, parse_duration, parse_spec, parse_time

NOW = 2_000_000_000 * 10**9
H = 3600 * 10**9


def test_durations_and_relative_times_share_one_parser() -> None:
    assert parse_duration("90s") == 90 * 10**9
    assert parse_duration("1d12h") == 36 * H
    assert parse_time("-1d12h", NOW) == NOW - 36 * H
    assert parse_time("-2w", NOW) == NOW - 14 * 24 * H
    for bad in ("", "1x", "12", "h1", "1h "):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_specs() -> None:
    assert parse_spec("") is not None and parse_spec("").listing
    assert parse_spec("3") == parse_spec("3") and parse_spec("3").version == 3  # type: ignore[union-attr]
    assert parse_spec("0") is None and parse_spec("03") is None
    assert parse_spec("2026-13-45") is None
    assert parse_spec("nightly").snapshot == "nightly"  # type: ignore[union-attr]
    for name in ("12", "-1h", "-1d12h", "2026-11-21", "a/b", "a@b"):
        with pytest.raises(UsageError):
            check_snapshot_name(name)
