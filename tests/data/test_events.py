"""The three event datasets load through tonic's real readers from files in their real formats."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from neurorl.data import BinSpec, DataNotFoundError, formats, load, open_tonic
from neurorl.errors import ConfigError

SENSOR = {"nmnist": (34, 34, 2), "dvsgesture": (128, 128, 2), "shd": (700, 1, 1)}


def _by_path(records):
    return {str(Path(r["path"])): r for r in records}


def _expected_array(rec, sensor, window_us, T):
    """Independent binning: bin = t // window, channel = p*H*W + y*W + x (counts)."""
    w, h, _ = sensor
    out = np.zeros((T, int(np.prod(sensor))), np.int64)
    b = rec["t_us"] // window_us
    ch = rec["p"] * h * w + rec["y"] * w + rec["x"]
    keep = b < T
    np.add.at(out, (b[keep], ch[keep]), 1)
    return out


@pytest.mark.parametrize("name", ["nmnist", "shd", "dvsgesture"])
def test_tonic_reads_the_written_events(tmp_path, name):
    recs = formats.write_synthetic(name, tmp_path, "train", n_per_class=2, n_classes=3, seed=1)
    ds = open_tonic(name, tmp_path, "train")
    assert len(ds) == len(recs) == 6
    if name == "shd":
        order = recs
    else:  # match tonic's file list to what was written
        table = _by_path(recs)
        order = [table[str(Path(p))] for p in ds.data]
    for i, rec in enumerate(order):
        events, label = ds[i]
        assert int(label) == rec["label"]
        assert len(events) == len(rec["t_us"])  # event count as written
        assert np.array_equal(events["x"], rec["x"])
        if name != "shd":
            assert np.array_equal(events["y"], rec["y"])
            assert np.array_equal(events["p"].astype(int), rec["p"])
            assert np.array_equal(events["t"], rec["t_us"])
        else:  # seconds as float32 on disk -> microseconds: within a microsecond
            assert np.max(np.abs(events["t"] - rec["t_us"])) <= 1


@pytest.mark.parametrize("name", ["nmnist", "shd", "dvsgesture"])
def test_binned_arrays_match_an_independent_histogram(tmp_path, name):
    recs = formats.write_synthetic(name, tmp_path, "train", n_per_class=2, n_classes=2, seed=2,
                                   duration_us=50_000)
    T, window = 10, 5_000
    data = load(name, tmp_path, "train", spec=BinSpec(n_time_bins=T, time_window_us=window,
                                                      binary=False), cache=False)
    n = int(np.prod(SENSOR[name]))
    assert data.x.shape == (4, T, n) and data.x.dtype == np.uint8
    assert data.sensor == SENSOR[name] and data.n_inputs == n
    ds = open_tonic(name, tmp_path, "train")
    order = recs if name == "shd" else [_by_path(recs)[str(Path(p))] for p in ds.data]
    assert data.y.tolist() == [r["label"] for r in order]
    for i, rec in enumerate(order):
        exp = _expected_array(rec, SENSOR[name], window, T)
        if name == "shd":  # float32 seconds may land a microsecond early: same bin except edges
            assert abs(int(data.x[i].sum()) - int(exp.sum())) <= 2
            assert np.abs(data.x[i].astype(int) - exp).sum() <= 4
        else:
            assert np.array_equal(data.x[i], exp)


def test_downsample_denoise_and_binary(tmp_path):
    formats.write_synthetic("nmnist", tmp_path, "train", n_per_class=1, n_classes=2)
    full = load("nmnist", tmp_path, spec=BinSpec(n_time_bins=8, binary=False), cache=False)
    half = load("nmnist", tmp_path, spec=BinSpec(n_time_bins=8, spatial_factor=0.5,
                                                  binary=False), cache=False)
    assert half.sensor == (17, 17, 2) and half.x.shape == (2, 8, 578)
    # Downsample drops no event: same totals per sample and per time bin
    assert np.array_equal(full.x.sum(2), half.x.sum(2))
    spikes = load("nmnist", tmp_path, spec=BinSpec(n_time_bins=8, spatial_factor=0.5),
                  cache=False)
    assert spikes.x.max() == 1 and np.array_equal(spikes.x, np.minimum(half.x, 1))
    den = load("nmnist", tmp_path, spec=BinSpec(n_time_bins=8, denoise_us=100.0,
                                                 binary=False), cache=False)
    assert 0 < den.x.sum() < full.x.sum()  # isolated events removed, correlated kept


def test_cache_is_reused_and_invalidated(tmp_path):
    recs = formats.write_synthetic("shd", tmp_path, "train", n_per_class=2, n_classes=2)
    spec = BinSpec(n_time_bins=12, spatial_factor=0.1)
    a = load("shd", tmp_path, spec=spec)
    caches = list((tmp_path / "neurorl-cache").iterdir())
    assert len(caches) == 1 and (caches[0] / "x.npy").exists()
    b = load("shd", tmp_path, spec=spec)
    assert isinstance(b.x, np.memmap) and np.array_equal(a.x, b.x)
    formats.write_shd_h5(recs[0]["path"], [np.array([0.01])], [np.array([5])], [1])
    c = load("shd", tmp_path, spec=spec)
    assert len(c) == 1 and c.y.tolist() == [1]
    assert len(list((tmp_path / "neurorl-cache").iterdir())) == 2


def test_batches_for_vmap(tmp_path):
    formats.write_synthetic("shd", tmp_path, "train", n_per_class=3, n_classes=3)
    data = load("shd", tmp_path, spec=BinSpec(n_time_bins=5, spatial_factor=0.1), cache=False)
    seen = []
    for x, y in data.batches(4, seed=0):
        assert x.dtype == np.float32 and x.shape[1:] == (5, 70) and x.shape[0] == y.shape[0]
        seen += y.tolist()
    assert sorted(seen) == sorted(data.y.tolist())
    assert [len(y) for _, y in data.batches(4, seed=0, drop_last=True)] == [4, 4]


def test_missing_data_and_bad_names_are_clear(tmp_path):
    with pytest.raises(DataNotFoundError, match="neurorl data download shd"):
        load("shd", tmp_path)
    with pytest.raises(ConfigError, match="nmnist"):
        load("nmnsit", tmp_path)
    formats.write_synthetic("nmnist", tmp_path, "train", n_per_class=1, n_classes=1)
    with pytest.raises(DataNotFoundError, match="Test"):
        load("nmnist", tmp_path, "test")
    with pytest.raises(ConfigError, match="denoise_us"):
        load("shd", tmp_path, spec=BinSpec(denoise_us=1000.0))
    with pytest.raises(ConfigError, match="split"):
        load("nmnist", tmp_path, "valid")


@pytest.mark.parametrize("name", ["nmnist", "dvsgesture"])
def test_clipped_fraction_and_saturation_match_an_independent_histogram(tmp_path, name):
    recs = formats.write_synthetic(name, tmp_path, "train", n_per_class=2, n_classes=2, seed=3,
                                   duration_us=50_000, rate_hz=400.0)
    T, window = 10, 5_000
    ds = open_tonic(name, tmp_path, "train")
    order = [_by_path(recs)[str(Path(p))] for p in ds.data]
    exp = [_expected_array(r, SENSOR[name], window, T) for r in order]
    before = sum(int(e.sum()) for e in exp)
    after = sum(int(np.minimum(e, 1).sum()) for e in exp)
    full = sum(int((e[:, e.any(0)] > 0).sum()) for e in exp)
    cells = sum(T * int(e.any(0).sum()) for e in exp)
    spec = BinSpec(n_time_bins=T, time_window_us=window)
    data = load(name, tmp_path, "train", spec=spec)
    assert data.clipped_fraction == pytest.approx(1 - after / before)
    assert data.saturation == pytest.approx(full / cells)
    assert 0 < data.clipped_fraction < 1 and 0 < data.saturation < 1
    again = load(name, tmp_path, "train", spec=spec)  # from the cache
    assert (again.clipped_fraction, again.saturation) == (data.clipped_fraction, data.saturation)
    counts = load(name, tmp_path, "train", cache=False,
                  spec=BinSpec(n_time_bins=T, time_window_us=window, binary=False))
    assert counts.clipped_fraction == 0.0


def test_saturating_binning_warns_and_names_the_settings(tmp_path):
    # a 16x16 pattern pooled into 4x4 blocks at 40 Hz: nearly every block fires in every 4 ms bin
    # (the generated DVS-Gesture files on which both rules sat at chance)
    formats.write_synthetic("dvsgesture", tmp_path, "train", n_per_class=2, n_classes=2,
                            duration_us=120_000)
    spec = BinSpec(n_time_bins=30, time_window_us=4000, spatial_factor=0.25)
    with pytest.warns(UserWarning) as rec:
        data = load("dvsgesture", tmp_path, "train", spec=spec, cache=False)
    msg = str(rec[0].message)
    assert data.saturation > 0.8
    for field in ("dataset.time_window_us", "dataset.spatial_factor = 0.25", "dataset.binary"):
        assert field in msg
    # at 5 Hz the pooled bins stay sparse: no warning
    formats.write_synthetic("dvsgesture", tmp_path / "sparse", "train", n_per_class=2,
                            n_classes=2, duration_us=120_000, rate_hz=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sparse = load("dvsgesture", tmp_path / "sparse", "train", spec=spec, cache=False)
    assert sparse.saturation < 0.5
