"""Event-camera and spiking-audio datasets through tonic, as time-first ``[T, n]`` arrays.

The field's loader, `tonic <https://tonic.readthedocs.io>`_ (Lenz et al. 2021), reads the files
and bins the events; neurorl only chooses the transforms, stacks the frames into ``[N, T, n]``
arrays (time-first per sample: ``x[i]`` is ``[T, n]``, ready for ``CompiledNetwork.run`` and for
``jax.vmap`` over the leading axis) and caches them on disk.

Pipeline per sample (tonic's own transforms, in this order)::

    events -> Denoise(filter_time)          optional, vision only (needs x and y)
           -> Downsample(spatial_factor)    optional: coordinates x f (sensor W, H -> floor(W f))
           -> ToFrame(sensor, n_time_bins)  or ToFrame(time_window) cropped / zero-padded to T
    frames [T, P, H, W] -> reshape [T, P * H * W] -> clip to 0..255 (uint8 counts) or 0/1

Channel ``c = p * H * W + y * W + x`` (tonic's frame layout flattened), so the first half of the
channels of a two-polarity sensor are OFF events and the second half ON events.

Datasets (``DATASETS``): ``nmnist`` (Orchard et al. 2015, 34x34x2, 10 classes), ``dvsgesture``
(Amir et al. 2017, tonic's preprocessed 128x128x2 recordings, 11 classes) and ``shd`` (Cramer et
al. 2020, 700 channels, 20 classes). Loading never downloads: missing data raises
:class:`DataNotFoundError` naming ``neurorl data download NAME``, which calls tonic's own download
(checksummed) where a network exists.

Cache: ``<root>/neurorl-cache/<name>-<split>-<key>/{x.npy, y.npy, meta.json}``; ``key`` hashes the
transform settings and the size and mtime of every file tonic reads, so new or changed files
rebuild it. ``x.npy`` is opened memory-mapped.

References:
    Lenz, Chaney, Shrestha, Oubari, Picaud & Zarrella, "Tonic: event-based datasets and
    transformations", Zenodo 2021 (tonic 1.x).
    Orchard, Jayawant, Cohen & Thakor, "Converting static image datasets to spiking neuromorphic
    datasets using saccades", Front. Neurosci. 9:437, 2015 (N-MNIST).
    Amir et al., "A low power, fully event-based gesture recognition system", CVPR 2017.
    Cramer, Stradmann, Schemmel & Zenke, "The Heidelberg spiking data sets for the systematic
    evaluation of spiking neural networks", IEEE TNNLS 33(7), 2022 (SHD).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neurorl.errors import ConfigError, NeurorlError, import_optional, lookup

SPLITS = ("train", "test")
CACHE_VERSION = 2
#: :func:`load` warns when more than this fraction of the bins of the channels that fired in a
#: sample sit at the clip value (a bin that is nearly always full carries almost no information)
SATURATION_WARN = 0.8


class DataNotFoundError(NeurorlError, FileNotFoundError):
    """A dataset's files are not where tonic looks; says where and how to get them."""

    def __init__(self, name: str, where: str | os.PathLike, hint: str) -> None:
        self.name, self.where = name, str(where)
        super().__init__(f"dataset {name!r}: no data at {where} ({hint}). "
                         f"Download it with: neurorl data download {name} --root <root>")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one dataset.

    Attributes:
        tonic_name: class name in ``tonic.datasets``.
        sensor_size: ``(W, H, P)`` as tonic declares it.
        n_classes: number of labels.
        file_type: suffix of the files tonic reads (the "extracted" check).
        subdir: ``{split: folder}`` under tonic's location that holds those files ("" = top).
        has_xy: events carry x and y (Denoise needs both).
        description: one line for ``neurorl data list``.
    """

    tonic_name: str
    sensor_size: tuple[int, int, int]
    n_classes: int
    file_type: str
    subdir: dict[str, str]
    has_xy: bool
    description: str


DATASETS: dict[str, DatasetInfo] = {
    "nmnist": DatasetInfo("NMNIST", (34, 34, 2), 10, ".bin", {"train": "Train", "test": "Test"},
                          True, "N-MNIST: MNIST digits recorded by an ATIS camera on saccades"),
    "dvsgesture": DatasetInfo("DVSGesture", (128, 128, 2), 11, ".npy",
                              {"train": "ibmGestureTrain", "test": "ibmGestureTest"}, True,
                              "DVS128 Gesture: 11 hand and arm gestures (tonic's preprocessed "
                              "copy)"),
    "shd": DatasetInfo("SHD", (700, 1, 1), 20, ".h5",
                       {"train": "shd_train.h5", "test": "shd_test.h5"}, False,
                       "Spiking Heidelberg Digits: spoken digits through a 700-channel cochlea "
                       "model"),
}


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (case-insensitive, "-"/"_" ignored).

    Raises:
        ConfigError: unknown name, with the closest one.
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    return lookup(DATASETS, key, "dataset", field="dataset.name")


def _tonic():
    # tonic is the `events` extra (pyproject.toml), not a core dependency
    return import_optional("tonic", "events", "dataset.name", "an event dataset")


def _offline_class(info: DatasetInfo):
    """tonic's dataset class with its download replaced by a clear error.

    tonic's constructor downloads when its files are missing; neurorl only downloads on
    ``neurorl data download``. The existence check is relaxed from "the archive and at least the
    full dataset's number of files" (10,000 .bin for N-MNIST, 100 .npy for DVS-Gesture) to "at
    least one file of the type under the split's folder", so a subset of the real files (or the
    small files the tests generate) loads; reading stays tonic's.
    """
    base = getattr(_tonic().datasets, info.tonic_name)

    class Offline(base):  # type: ignore[misc, valid-type]
        def download(self) -> None:  # noqa: D102
            raise DataNotFoundError(type(self).__name__, self.location_on_system,
                                    f"tonic looks for {info.file_type} files here")

        def _check_exists(self) -> bool:
            return any(Path(self.location_on_system).glob(f"**/*{info.file_type}"))

    Offline.__name__ = base.__name__  # tonic's location is <save_to>/<class name>
    Offline.__qualname__ = base.__qualname__
    return Offline


def _split_arg(info: DatasetInfo, split: str) -> dict[str, Any]:
    if split not in SPLITS:
        raise ConfigError("dataset.split", split, f"one of {list(SPLITS)}")
    return {"train": split == "train"}


def open_tonic(name: str, root: str | os.PathLike, split: str = "train",
               transform: Any = None) -> Any:
    """tonic's dataset object for ``name`` under ``root`` (no download).

    Args:
        name: a key of ``DATASETS``.
        root: tonic's ``save_to``; the files are under ``root/<TonicClassName>/``.
        split: "train" or "test".
        transform: a tonic transform applied to every sample's events.

    Returns:
        The tonic dataset (indexable: ``events, label = ds[i]``).

    Raises:
        DataNotFoundError: the files are not there.
    """
    info = dataset_info(name)
    kw = _split_arg(info, split)
    cls = _offline_class(info)
    where = Path(os.path.expanduser(str(root))) / info.tonic_name / info.subdir[split]
    if not where.exists():
        raise DataNotFoundError(name, where, f"tonic looks for {info.file_type} files there")
    return cls(str(root), transform=transform, **kw)


def download(name: str, root: str | os.PathLike, splits: tuple[str, ...] = SPLITS) -> Path:
    """Fetch a dataset with tonic's own (checksummed) download into ``root``.

    Args:
        name: a key of ``DATASETS``.
        root: directory to download into (tonic's ``save_to``).
        splits: which splits.

    Returns:
        The dataset's folder ``root/<TonicClassName>``.

    Raises:
        NeurorlError: the download failed (no network, server down), with the URL it tried.
    """
    info = dataset_info(name)
    base = getattr(_tonic().datasets, info.tonic_name)
    for split in splits:
        kw = _split_arg(info, split)
        try:
            base(str(root), **kw)
        except Exception as e:  # urllib/socket errors differ by platform; all mean "no data"
            url = getattr(base, f"{split}_url", None) or getattr(base, "base_url", "")
            raise NeurorlError(f"downloading {name} ({split}) from {url} failed: "
                               f"{type(e).__name__}: {e}. It needs a network connection; or "
                               f"place the extracted files under "
                               f"{Path(root) / info.tonic_name}") from None
    return Path(root) / info.tonic_name


# --------------------------------------------------------------------------------------------
# transforms and arrays


@dataclasses.dataclass(frozen=True)
class BinSpec:
    """How events become a ``[T, n]`` array.

    Attributes:
        n_time_bins: ``T``.
        time_window_us: None: tonic's ``ToFrame(n_time_bins=T)`` (each recording spread over T
            bins); a number: ``ToFrame(time_window=...)`` from t = 0, cropped / zero-padded to T
            (real time per bin).
        spatial_factor: tonic ``Downsample`` factor for x and y (1 = none).
        denoise_us: tonic ``Denoise(filter_time)`` in microseconds (None = none; vision only).
        binary: clip counts to 0/1 (spikes) instead of 0..255 (counts).
    """

    n_time_bins: int = 100
    time_window_us: float | None = None
    spatial_factor: float = 1.0
    denoise_us: float | None = None
    binary: bool = True

    def validate(self, info: DatasetInfo) -> BinSpec:
        n = self.n_time_bins
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError("dataset.n_time_bins", self.n_time_bins, "an integer >= 1")
        if self.time_window_us is not None and not self.time_window_us > 0:
            raise ConfigError("dataset.time_window_us", self.time_window_us, "None or > 0 (us)")
        if not 0 < self.spatial_factor <= 1:
            raise ConfigError("dataset.spatial_factor", self.spatial_factor, "a number in (0, 1]")
        if self.denoise_us is not None:
            if not info.has_xy:
                raise ConfigError("dataset.denoise_us", self.denoise_us,
                                  f"None for {info.tonic_name} (tonic's Denoise needs x and y)")
            if not self.denoise_us > 0:
                raise ConfigError("dataset.denoise_us", self.denoise_us, "None or > 0 (us)")
        return self


def sensor_after(info: DatasetInfo, spec: BinSpec) -> tuple[int, int, int]:
    """Sensor size ``(W, H, P)`` after Downsample (tonic truncates ``x * f`` to an int)."""
    w, h, p = info.sensor_size
    f = spec.spatial_factor
    # the largest coordinate W - 1 maps to int((W - 1) f); sizes count 0..that
    return (int((w - 1) * f) + 1, int((h - 1) * f) + 1 if h > 1 else 1, p)


def make_transform(info: DatasetInfo, spec: BinSpec) -> Any:
    """tonic ``Compose`` of Denoise / Downsample / ToFrame for ``spec``."""
    T = _tonic().transforms
    steps: list[Any] = []
    if spec.denoise_us is not None:
        steps.append(T.Denoise(filter_time=spec.denoise_us))
    if spec.spatial_factor != 1.0:
        f = spec.spatial_factor
        steps.append(T.Downsample(spatial_factor=(f, f if info.sensor_size[1] > 1 else 1.0)))
    sensor = sensor_after(info, spec)
    if spec.time_window_us is None:
        steps.append(T.ToFrame(sensor_size=sensor, n_time_bins=spec.n_time_bins))
    else:
        steps.append(T.ToFrame(sensor_size=sensor, time_window=spec.time_window_us,
                               start_time=0, end_time=spec.time_window_us * spec.n_time_bins,
                               include_incomplete=True))
    return T.Compose(steps)


def frames_to_array(frames: np.ndarray, spec: BinSpec, n: int, *, return_counts: bool = False
                    ) -> np.ndarray | tuple[np.ndarray, int, int]:
    """tonic frames ``[T', P, H, W]`` -> uint8 ``[T, n]`` (crop / zero-pad to T, clip counts).

    With ``return_counts``, also ``(events before the clip, events after it, bins at the clip
    value, bins of the channels that fired)`` over the kept bins (``binary`` keeps one event per
    channel and bin; counts saturate at 255), so a caller can tell how much the binning threw
    away and how full the bins are.
    """
    f = np.asarray(frames).reshape(len(frames), -1) if len(frames) else np.zeros((0, n))
    if f.shape[1] != n:
        raise ValueError(f"frame has {f.shape[1]} channels, expected {n}")
    out = np.zeros((spec.n_time_bins, n), np.uint8)
    k = min(spec.n_time_bins, f.shape[0])
    top = 1 if spec.binary else 255
    out[:k] = np.clip(f[:k], 0, top)
    if return_counts:
        active = out.any(axis=0)
        return (out, int(np.asarray(f[:k], np.int64).sum()), int(out[:k].sum(dtype=np.int64)),
                int((out[:k, active] == top).sum()), int(k * active.sum()))
    return out


@dataclasses.dataclass(frozen=True)
class EventData:
    """A binned split: ``x [N, T, n]`` (uint8, maybe memory-mapped) and labels ``y [N]``.

    Attributes:
        name: dataset key; split: "train" / "test".
        x: counts or spikes per bin; ``x[i]`` is sample i's time-first ``[T, n]`` array.
        y: int32 labels.
        sensor: ``(W, H, P)`` after downsampling (``n = W * H * P``).
        spec: the :class:`BinSpec` used.
        n_classes: number of classes of the dataset.
        clipped_fraction: fraction of the events in the kept bins that the clip to spikes
            (``spec.binary``) or to 255 merged away; None when unknown (generated in memory).
        saturation: fraction of the bins of the channels that fired in a sample that sit at the
            clip value (1 for spikes); near 1, every class gives the same frames. None when
            unknown.
    """

    name: str
    split: str
    x: np.ndarray
    y: np.ndarray
    sensor: tuple[int, int, int]
    spec: BinSpec
    n_classes: int
    clipped_fraction: float | None = None
    saturation: float | None = None

    @property
    def n_inputs(self) -> int:
        return int(self.x.shape[2])

    @property
    def n_time_bins(self) -> int:
        return int(self.x.shape[1])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batches(self, batch_size: int, *, seed: int | None = 0, drop_last: bool = False
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Batches ``(x [B, T, n] float32, y [B] int32)``, shuffled with ``seed`` (None: in order).

        ``jax.vmap(f)(x)`` maps a per-sample function ``f([T, n])`` over the batch.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ConfigError("batch_size", batch_size, "an integer >= 1")
        order = np.arange(len(self)) if seed is None else \
            np.random.default_rng(seed).permutation(len(self))
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for i in range(0, stop, batch_size):
            idx = np.sort(order[i:i + batch_size]) if seed is None else order[i:i + batch_size]
            yield np.asarray(self.x[idx], np.float32), np.asarray(self.y[idx], np.int32)

    def subset(self, idx: Any) -> EventData:
        """The samples ``idx`` (an index array or boolean mask) as a new in-memory EventData."""
        idx = np.asarray(idx)
        return dataclasses.replace(self, x=np.asarray(self.x[idx]), y=np.asarray(self.y[idx]))


def _files_signature(location: Path, file_type: str) -> list[tuple[str, int, int]]:
    sig = []
    for p in sorted(location.glob(f"**/*{file_type}")):
        st = p.stat()
        sig.append((str(p.relative_to(location)), st.st_size, int(st.st_mtime_ns)))
    return sig


def load(name: str, root: str | os.PathLike, split: str = "train", *,
         spec: BinSpec | None = None, limit: int | None = None, cache: bool = True
         ) -> EventData:
    """Load a split through tonic as ``[N, T, n]`` arrays (cached on disk).

    Args:
        name: "nmnist", "dvsgesture" or "shd".
        root: tonic's ``save_to`` (the dataset lives in ``root/<TonicClassName>/``).
        split: "train" or "test".
        spec: binning (:class:`BinSpec`; default 100 bins over each recording, spikes).
        limit: keep the first ``limit`` samples in tonic's order (None = all).
        cache: read/write ``root/neurorl-cache``.

    Returns:
        :class:`EventData`.

    Raises:
        DataNotFoundError: no files; ConfigError: bad name, split or binning.
    """
    info = dataset_info(name)
    key_name = info.tonic_name.lower()
    spec = (spec or BinSpec()).validate(info)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise ConfigError("dataset.limit", limit, "None or an integer >= 1")
    ds = open_tonic(name, root, split, transform=make_transform(info, spec))
    location = Path(ds.location_on_system)
    sensor = sensor_after(info, spec)
    n = int(np.prod(sensor))
    count = len(ds) if limit is None else min(limit, len(ds))
    key = hashlib.sha256(json.dumps({
        "v": CACHE_VERSION, "spec": dataclasses.asdict(spec), "count": count,
        "files": _files_signature(location, info.file_type)}, sort_keys=True).encode()
    ).hexdigest()[:16]
    cdir = Path(os.path.expanduser(str(root))) / "neurorl-cache" / f"{key_name}-{split}-{key}"
    if cache and (cdir / "meta.json").exists():
        x = np.load(cdir / "x.npy", mmap_mode="r")
        y = np.load(cdir / "y.npy")
        meta = json.loads((cdir / "meta.json").read_text())
        clipped, sat = meta.get("clipped_fraction"), meta.get("saturation")
        _warn_if_saturated(name, split, spec, clipped, sat)
        return EventData(key_name, split, x, y, sensor, spec, info.n_classes, clipped, sat)
    x = np.zeros((count, spec.n_time_bins, n), np.uint8)
    y = np.zeros((count,), np.int32)
    tally = np.zeros(4, np.int64)  # events before / after the clip, full bins, active bins
    for i in range(count):
        frames, label = ds[i]
        x[i], *counts = frames_to_array(frames, spec, n, return_counts=True)
        tally += counts
        y[i] = int(np.asarray(label).reshape(-1)[0])
    before, after, full, cells = (int(v) for v in tally)
    clipped = 1.0 - after / before if before else 0.0
    sat = full / cells if cells else 0.0
    if cache:
        cdir.mkdir(parents=True, exist_ok=True)
        np.save(cdir / "x.npy", x)
        np.save(cdir / "y.npy", y)
        (cdir / "meta.json").write_text(json.dumps(
            {"name": key_name, "split": split, "spec": dataclasses.asdict(spec),
             "sensor": sensor, "count": count, "clipped_fraction": clipped, "saturation": sat}))
    _warn_if_saturated(name, split, spec, clipped, sat)
    return EventData(key_name, split, x, y, sensor, spec, info.n_classes, clipped, sat)


def _warn_if_saturated(name: str, split: str, spec: BinSpec, clipped: float | None,
                       sat: float | None) -> None:
    """Warn when most bins of the active channels are full (they carry almost no signal)."""
    if sat is None or sat <= SATURATION_WARN:
        return
    how = ("dataset.binary: true keeps one event per channel and bin" if spec.binary
           else "counts saturate at 255 per channel and bin")
    warnings.warn(
        f"{name} {split}: {sat:.0%} of the bins of the channels that fired are full and the "
        f"binning merged {clipped:.0%} of the events away ({how}); such frames look alike "
        f"across classes. Use shorter bins (dataset.n_time_bins = "
        f"{spec.n_time_bins}, dataset.time_window_us = {spec.time_window_us}), less spatial "
        f"pooling (dataset.spatial_factor = {spec.spatial_factor}) or dataset.binary: false.",
        UserWarning, stacklevel=3)
