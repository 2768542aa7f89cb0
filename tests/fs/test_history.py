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


@pytest.mark.parametrize("spec", [
    # digits, but not ASCII ones
    "²", "\u0661", "\u0661\u0662", "-\u0661h", "-1h\u0661", "\u0662\u0660\u0662\u0666-11-21", "2026-\u0661\u0661-21",
    "9999999999999999999", "18446744073709551617",  # beyond any version number SQLite can hold
    "-99999999999y", "-9999999999999999999s", "2263-01-01", "9999-12-31T23:59:59Z",  # beyond 2**63 ns
    "0001-01-01", "1969-12-31T23:59:59Z",  # before the epoch: no store existed
])
def test_out_of_range_and_non_ascii_specs_name_nothing(spec: str) -> None:
    parsed = parse_spec(spec, NOW)
    assert parsed is None or parsed.snapshot == spec, parsed  # never a version or a time
    assert parse_time(spec, NOW) is None


def test_the_largest_version_and_latest_time_still_parse() -> None:
    assert parse_spec(str(2**63 - 1)).version == 2**63 - 1  # type: ignore[union-attr]
    assert parse_spec(str(2**63)) is None
    assert parse_time("2262-04-11T00:00:00Z") == 9_223_286_400 * 10**9


def test_only_ascii_digits_make_durations() -> None:
    for bad in ("\u0661h", "1h\u0662m", "²s"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_snapshot_names_must_be_utf8_text() -> None:
    for name in ("caf\udce9", "\udcff"):  # raw bytes of a path, decoded with surrogateescape
        with pytest.raises(UsageError, match="UTF-8"):
            check_snapshot_name(name)
    check_snapshot_name("café ☕")
