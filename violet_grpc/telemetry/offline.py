"""Reading offline W&B runs back without syncing them.

An offline run is ``WANDB_DIR/wandb/offline-run-<time>-<id>/run-<id>.wandb``: W&B's record log,
a LevelDB-style log (7-byte file header ``:W&B`` + magic + version, then 32 KiB blocks of
records with a 7-byte header: CRC32, length, type FULL/FIRST/MIDDLE/LAST) whose payloads are
``wandb_internal_pb2.Record`` messages. ``history`` records hold what ``run.log`` logged.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_HEADER = 7
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def find_offline_runs(wandb_dir: Path) -> list[Path]:
    """Offline run directories under ``wandb_dir`` (the ``WANDB_DIR``), oldest first."""
    return sorted(Path(wandb_dir).glob("wandb/offline-run-*"))


def read_records(path: Path) -> list[bytes]:
    """The raw record payloads of a ``.wandb`` file, in order."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    records: list[bytes] = []
    pending = b""
    pos = _HEADER
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        pos += _HEADER
        chunk = data[pos:pos + length]
        pos += length
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
            pending = b""
        elif kind == 0 and length == 0:
            pos += left - _HEADER  # zero padding up to the next block
    return records


def read_offline_history(run_dir: Path) -> list[dict[str, Any]]:
    """Every row ``run.log`` wrote to an offline run, as dicts of metric name → value."""
    from wandb.proto import wandb_internal_pb2

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    rows = []
    for raw in read_records(files[0]):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({
                item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item
            })
    return rows
