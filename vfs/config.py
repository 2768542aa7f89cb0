"""Tunables with their defaults, in one place."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class StoreConfig:
    """How data is cut, compressed and packed. Written into a new store; read back from it after."""

    # FastCDC: the real mean chunk is about avg + min (cut-point skipping), ~640 KiB here.
    chunk_min: int = 128 * KiB
    chunk_avg: int = 512 * KiB
    chunk_max: int = 2 * MiB
    zstd_level: int = 3
    # A pack is sealed (becomes immutable, ready to upload) once it grows past this.
    pack_target: int = 16 * MiB


@dataclass(frozen=True)
class RemoteConfig:
    """Where a store's replica lives (catalog meta 'remote'). Never holds a credential: those come
    from boto3's standard chain (environment, profile, instance role)."""

    url: str  # s3://BUCKET/PREFIX (or file:///PATH, memory://NAME for tests)
    endpoint_url: str | None = None  # S3-compatible servers (MinIO, Garage, Ceph); None = AWS
    region: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RemoteConfig:
        d = json.loads(text)
        return cls(str(d["url"]), d.get("endpoint_url"), d.get("region"))
