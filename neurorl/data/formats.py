"""Writers of the three datasets' on-disk formats, for tests and offline benchmarks.

These write files exactly as the published datasets store them, written from the format
descriptions (not from tonic's reader), so that tonic's real reading code runs on them:

* **N-MNIST** (Orchard et al. 2015, dataset page): one ``.bin`` per sample under
  ``NMNIST/{Train,Test}/<digit>/``, every event 40 bits big-endian: bits 39-32 x, 31-24 y,
  bit 23 polarity (1 = ON), bits 22-0 timestamp in microseconds.
* **SHD** (Cramer et al. 2022, Sec. III and the dataset page): one HDF5 file per split,
  ``SHD/shd_{train,test}.h5`` with ``spikes/times`` (variable-length float arrays, seconds),
  ``spikes/units`` (variable-length uint16 channel ids 0..699), ``labels`` (uint16),
  ``extra/speaker`` (uint16), ``extra/keys`` (class names) and ``extra/meta_info``.
* **DVS-Gesture** as tonic distributes it (tonic's preprocessed copy of Amir et al. 2017):
  ``DVSGesture/ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy``, each an ``[E, 4]``
  integer array of columns x, y, polarity, t in milliseconds.

Each writer takes events as numpy arrays and returns what it wrote, so a test can compare the
loaded arrays with the values written. :func:`write_synthetic` fills a whole split with
class-dependent events (learnable): a frozen spike pattern per class, jittered per sample.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from neurorl.errors import ConfigError


def write_nmnist_bin(path: str | os.PathLike, x: Any, y: Any, p: Any, t_us: Any) -> Path:
    """Write one N-MNIST ``.bin`` file (40-bit events, big-endian fields).

    Args:
        path: file to write (parents created).
        x, y: pixel coordinates 0..255 (N-MNIST uses 0..33).
        p: polarity 0/1.
        t_us: timestamps in microseconds, < 2**23.

    Returns:
        The path.
    """
    x, y, p, t = (np.asarray(a, np.int64) for a in (x, y, p, t_us))
    if np.any((x < 0) | (x > 255) | (y < 0) | (y > 239)):  # y = 240 marks overflow events
        raise ConfigError("nmnist x/y", (x.min(), y.max()), "0 <= x <= 255, 0 <= y <= 239")
    if np.any((t < 0) | (t >= 2**23)):
        raise ConfigError("nmnist t_us", (t.min(), t.max()), "0 <= t < 2**23 microseconds")
    raw = np.zeros((x.size, 5), np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = ((p & 1) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())
    return path


def write_shd_h5(path: str | os.PathLike, times_s: list[Any], units: list[Any], labels: Any,
                 speakers: Any = None, keys: list[str] | None = None) -> Path:
    """Write an SHD-layout HDF5 file.

    Args:
        path: e.g. ``root/SHD/shd_train.h5``.
        times_s: per sample, spike times in seconds.
        units: per sample, channel ids (0..699) of those spikes.
        labels: ``[N]`` class ids.
        speakers: ``[N]`` speaker ids (default 0).
        keys: class names (default ``"digit-<k>"``).

    Returns:
        The path.
    """
    import h5py

    labels = np.asarray(labels, np.uint16)
    n = labels.size
    if len(times_s) != n or len(units) != n:
        raise ConfigError("shd samples", (len(times_s), len(units), n), "equal lengths")
    speakers = np.zeros(n, np.uint16) if speakers is None else np.asarray(speakers, np.uint16)
    keys = keys or [f"digit-{k}" for k in range(int(labels.max()) + 1 if n else 1)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        sp = f.create_group("spikes")
        tt = sp.create_dataset("times", (n,), dtype=h5py.vlen_dtype(np.float32))
        uu = sp.create_dataset("units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            tt[i] = np.asarray(times_s[i], np.float32)
            uu[i] = np.asarray(units[i], np.uint16)
        f.create_dataset("labels", data=labels)
        ex = f.create_group("extra")
        ex.create_dataset("speaker", data=speakers)
        ex.create_dataset("keys", data=np.array([k.encode() for k in keys]))
        meta = ex.create_group("meta_info")
        meta.create_dataset("gender", data=np.zeros(n, np.uint8))
        meta.create_dataset("age", data=np.zeros(n, np.uint16))
        meta.create_dataset("body_height", data=np.zeros(n, np.uint16))
        meta.create_dataset("recording", data=np.zeros(n, np.uint16))
    return path


def write_dvsgesture_npy(path: str | os.PathLike, x: Any, y: Any, p: Any, t_ms: Any) -> Path:
    """Write one recording in tonic's DVS-Gesture layout: ``[E, 4]`` int64 (x, y, p, t in ms).

    The file name is the label: ``.../user01_fluorescent/<label>.npy``.
    """
    arr = np.stack([np.asarray(a, np.int64) for a in (x, y, p, t_ms)], axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)
    return path


# --------------------------------------------------------------------------------------------
# whole splits of class-dependent events

_SPLIT_DIRS = {
    "nmnist": {"train": "Train", "test": "Test"},
    "dvsgesture": {"train": "ibmGestureTrain", "test": "ibmGestureTest"},
}


def write_synthetic(name: str, root: str | os.PathLike, split: str = "train", *,
                    n_per_class: int = 4, n_classes: int | None = None, seed: int = 0,
                    duration_us: int = 100_000, rate_hz: float = 40.0,
                    jitter_us: float = 2_000.0) -> list[dict[str, Any]]:
    """Fill ``root`` with a learnable split in the real format of ``name``.

    Every class has a frozen random spike pattern over the sensor's channels (Poisson at
    ``rate_hz`` over ``duration_us``); each sample is its class's pattern with every event
    jittered by ``N(0, jitter_us)`` (clipped to the recording). Events are then written with the
    writers above (the channel becomes pixel x, y and polarity; SHD: unit).

    Returns:
        One record per written sample: ``{"path", "label", "x", "y", "p", "t_us"}`` (SHD: ``x``
        is the unit and ``y``, ``p`` are zeros); N-MNIST and SHD in tonic's order, DVS-Gesture
        in writing order (tonic lists a folder's files in the file system's order).
    """
    from neurorl.data.events import dataset_info

    info = dataset_info(name)
    key = info.tonic_name.lower()
    n_classes = info.n_classes if n_classes is None else int(n_classes)
    if not 1 <= n_classes <= info.n_classes:
        raise ConfigError("n_classes", n_classes, f"1..{info.n_classes}")
    w, h, pol = info.sensor_size
    # keep the images small for the vision sets: the pattern lives in a 16x16 corner
    ww, hh = (min(w, 16), min(h, 16)) if h > 1 else (w, 1)
    n_ch = ww * hh * pol
    rng = np.random.default_rng(seed)
    mean_events = rate_hz * duration_us * 1e-6
    templates = []
    for _ in range(n_classes):
        counts = rng.poisson(mean_events, size=n_ch)
        ch = np.repeat(np.arange(n_ch), counts)
        t = rng.uniform(0, duration_us, size=ch.size)
        templates.append((ch, t))
    sample_rng = np.random.default_rng([seed, 1 if split == "test" else 0])
    records: list[dict[str, Any]] = []
    shd_t, shd_u, shd_l = [], [], []
    for label in range(n_classes):
        ch0, t0 = templates[label]
        for j in range(n_per_class):
            t = np.clip(t0 + sample_rng.normal(0, jitter_us, size=t0.size), 0, duration_us - 1)
            order = np.argsort(t, kind="stable")
            ch, t = ch0[order], np.round(t[order]).astype(np.int64)
            p = ch // (ww * hh)
            xy = ch % (ww * hh)
            x, y = xy % ww, xy // ww
            rec = {"label": label, "x": x, "y": y, "p": p, "t_us": t}
            if key == "nmnist":
                rec["path"] = write_nmnist_bin(
                    Path(root) / "NMNIST" / _SPLIT_DIRS[key][split] / str(label) / f"{j:05d}.bin",
                    x, y, p, t)
            elif key == "dvsgesture":
                # whole milliseconds on disk (tonic multiplies t by 1000 when reading)
                t_ms = t // 1000
                rec["t_us"] = t_ms * 1000
                rec["path"] = write_dvsgesture_npy(
                    Path(root) / "DVSGesture" / _SPLIT_DIRS[key][split]
                    / f"user{j + 1:02d}_fluorescent" / f"{label}.npy", x, y, p, t_ms)
            else:
                rec.update(x=ch, y=np.zeros_like(ch), p=np.zeros_like(ch))
                shd_t.append(t * 1e-6)
                shd_u.append(ch)
                shd_l.append(label)
            records.append(rec)
    if key == "shd":
        path = write_shd_h5(Path(root) / "SHD" / f"shd_{split}.h5", shd_t, shd_u, shd_l)
        for r in records:
            r["path"] = path
    return _tonic_order(key, records)


def _tonic_order(key: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records sorted the way tonic lists the files (os.walk with sorted dirs and files)."""
    if key == "nmnist":
        return sorted(records, key=lambda r: str(r["path"]))
    return records  # DVS-Gesture: tonic keeps the file system's order within a folder
