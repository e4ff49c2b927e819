"""Read a wandb offline datastore (``run-<id>.wandb``) in the tests, without wandb's servers.

The file is wandb's LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version), then
32 KiB blocks of chunks ``crc32 (4) | length (2, LE) | type (1) | data`` (FULL=1, FIRST=2,
MIDDLE=3, LAST=4); the reassembled payloads are ``wandb_internal_pb2.Record`` protobufs.
"""

import json
import struct

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
HEADER = 7


def read_records(path):
    data = open(path, "rb").read()
    assert data[:4] == b":W&B", "not a wandb datastore"
    pos, payload, out = HEADER, b"", []
    while pos + 7 <= len(data):
        left_in_block = BLOCK - (pos % BLOCK)
        if left_in_block < 7:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left_in_block
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        payload = chunk if kind in (1, 2) else payload + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(payload)
            out.append(rec)
            payload = b""
    return out


def _key(item):
    return item.key or "/".join(item.nested_key)


def summarize(path):
    """Return (config dict, summary dict, list of history rows, run record) of an offline run."""
    config, summary, history, run = {}, {}, [], None
    for rec in read_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "config":
            for item in rec.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in rec.summary.update:
                summary[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "run":
            run = rec.run
            for item in rec.run.config.update:
                config[item.key] = json.loads(item.value_json)
    if run is None:
        kinds = [r.WhichOneof("record_type") for r in read_records(path)]
        raise AssertionError(f"no run record in {path} ({len(kinds)} records: {kinds[:12]})")
    return config, summary, history, run
