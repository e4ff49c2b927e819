"""Event-data benchmark: vision and audio classification with e-prop and BPTT on N-HAL networks.

Datasets: the synthetic jittered spike-pattern task (:mod:`neurorl.data.synthetic`), N-MNIST,
DVS-Gesture and SHD through tonic (:mod:`neurorl.data.events`). With ``--root DIR`` holding the
real downloads (``neurorl data download NAME --root DIR``) the real data are used (``--limit``
samples per split); otherwise, as on this offline machine, small splits are **generated** in each
dataset's real on-disk format (:func:`neurorl.data.formats.write_synthetic`: a frozen event
pattern per class, jittered per sample) and read through tonic -- the pipeline is the real one,
the numbers are not the published datasets' and say so in the ``data`` column.

Per dataset x rule x chip (one seed; :mod:`neurorl.experiment.classification`): test accuracy,
spikes per inference and per correct inference (spike efficiency), activation sparsity, effective
synaptic operations per inference, latency to first spike (bins), energy per inference on Loihi,
Loihi 2 and SpiNNaker (:mod:`neurorl.hardware.energy`), training wall time (noisy on a shared
machine; not a speed claim).

Budget: quick (smoke) = synthetic + generated SHD, e-prop and BPTT on float, 1 epoch, about a
minute; full = four datasets x {e-prop, BPTT} on float plus the synthetic task on Loihi 2's
8-bit weights (on-chip learning: stochastic rounding onto the grid; BPTT straight-through), a
few minutes on 2 cores with generated data.

Usage: python benchmarks/event_data.py [--quick] [--root DIR] [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BINS = {  # per dataset: binning and model size
    "synthetic": {"dataset": {"n_time_bins": 50}, "model": {"n_hidden": 64}},
    "nmnist": {"dataset": {"n_time_bins": 30, "time_window_us": 4000, "spatial_factor": 0.5},
               "model": {"n_hidden": 64}},
    "dvsgesture": {"dataset": {"n_time_bins": 30, "time_window_us": 4000,
                               "spatial_factor": 0.25}, "model": {"n_hidden": 64}},
    "shd": {"dataset": {"n_time_bins": 40, "time_window_us": 3000, "spatial_factor": 0.1},
            "model": {"n_hidden": 64}},
}
LR = {"eprop": 2e-3, "bptt": 5e-3}
# event rate of the generated files (Hz per pixel): DVS-Gesture's 4x4 pooling of a 16x16 pattern
# at write_synthetic's default 40 Hz fills nearly every pooled 4 ms bin, so the binary frames of
# all classes look alike (both rules sat at chance, 0.25); 5 Hz keeps the pooled bins sparse
GEN_RATE_HZ = {"dvsgesture": 5.0}
ENERGY_CHIPS = ("loihi", "loihi2", "spinnaker")


def _has_real(name: str, root: Path | None) -> bool:
    from neurorl.data import dataset_info

    if root is None:
        return False
    info = dataset_info(name)
    return any((root / info.tonic_name).glob(f"**/*{info.file_type}"))


def case(name: str, rule: str, chip: str, epochs: int, root: Path | None, gen_root: Path,
         limit: int | None, n_per_class: int) -> dict[str, Any]:
    from neurorl.data import formats
    from neurorl.experiment import classification as K

    tree: dict[str, Any] = {
        "task": "classification", "name": f"{name}-{rule}-{chip}",
        "dataset": {"name": name, **BINS[name]["dataset"]}, "model": BINS[name]["model"],
        "learning": {"rule": rule, "epochs": epochs, "lr": LR[rule]},
        "hardware": {"chip": chip}, "logging": {"progress": False},
    }
    source = "generated in memory"
    if name != "synthetic":
        if _has_real(name, root):
            tree["dataset"].update(root=str(root), limit_train=limit, limit_test=limit)
            source = f"real ({root})"
        else:
            if not (gen_root / name).exists():
                for split in ("train", "test"):
                    formats.write_synthetic(name, gen_root, split, n_per_class=n_per_class,
                                            n_classes=4, seed=0, duration_us=120_000,
                                            rate_hz=GEN_RATE_HZ.get(name, 40.0))
                (gen_root / name).mkdir()
            tree["dataset"]["root"] = str(gen_root)
            source = "generated files (real format, 4 classes)"
    cfg = K.validate(tree)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        s = K.run_classification(cfg, d, progress=False)
    e = s.get("energy_per_inference_j") or {}
    return {
        "dataset": name, "data": source, "rule": rule, "chip": chip,
        "train/test": f"{s['n_train']}/{s['n_test']}", "inputs": s["n_inputs"],
        "bins": s["n_time_bins"],
        "clipped": (None if s.get("clipped_fraction_train") is None
                    else round(s["clipped_fraction_train"], 2)),
        "full bins": (None if s.get("saturation_train") is None
                      else round(s["saturation_train"], 2)),
        "accuracy": round(s["accuracy"], 3),
        "spikes/inference": round(s["spikes_per_inference"], 1),
        "spikes/correct": (None if s["spikes_per_correct_inference"] is None
                           else round(s["spikes_per_correct_inference"], 1)),
        "sparsity": round(s["activation_sparsity"], 3),
        "synops/inference": round(s["synops_per_inference"]),
        "first spike (bins)": (None if s["first_spike_latency_bins"] is None
                               else round(s["first_spike_latency_bins"], 2)),
        **{f"E/inf {c} (J)": (f"{e[c]:.3g}" if c in e else None) for c in ENERGY_CHIPS},
        "train s": round(time.perf_counter() - t0, 1),
    }


def main(quick: bool = False, out: str | Path | None = None, root: str | None = None,
         limit: int | None = 2000) -> dict[str, Any]:
    from benchmarks.common import machine, provenance, provenance_line, write_results

    rootp = Path(root).expanduser() if root else None
    if quick:
        plan = [(n, r, "float") for n in ("synthetic", "shd") for r in ("eprop", "bptt")]
        epochs, n_per_class = 1, 8
    else:
        plan = [(n, r, "float") for n in ("synthetic", "nmnist", "dvsgesture", "shd")
                for r in ("eprop", "bptt")]
        plan += [("synthetic", r, "loihi2") for r in ("eprop", "bptt")]
        epochs, n_per_class = 3, 20
    rows = []
    with tempfile.TemporaryDirectory() as gen:
        for name, rule, chip in plan:
            print(f"event_data: {name} {rule} {chip}", flush=True)
            rows.append(case(name, rule, chip, epochs, rootp, Path(gen), limit, n_per_class))
    prov = provenance()
    md = "\n".join([
        "## Event data (vision and audio): classification with e-prop and BPTT", "",
        "N-HAL network: input relay -> LIF hidden -> leaky-integrator readout; e-prop through the "
        "library's `eprop` LearningRule (online, one sample at a time), BPTT through "
        "`jax.grad` of `CompiledNetwork.run`. Energy per inference from each chip's per-event "
        "constants (no on-chip learning counted). Rows marked *generated* use small files "
        "written in the dataset's real format (this machine is offline): they check the "
        "pipeline, not the published accuracy. Same command with `--root` on the real "
        "downloads. The synthetic task's bar (issue 18): >= 90 % test accuracy for e-prop and "
        "BPTT on float and on Loihi 2's 8-bit grid. `clipped`: fraction of the training events "
        "the binary binning merged (one spike per channel and bin); `full bins`: fraction of "
        "the bins of the channels that fired that hold a spike (the loader warns above 0.8: "
        "such frames look alike across classes). `train s` is wall time on a shared, loaded "
        "machine: an upper bound, not a speed claim.", "",
        _table(rows), "", provenance_line(prov), ""])
    result = {"quick": quick, "rows": rows, "machine": machine(), "provenance": prov}
    write_results("event_data", result, rows, out=out, markdown=md)
    return result


def _table(rows: list[dict[str, Any]]) -> str:
    from benchmarks.common import markdown_table

    return markdown_table(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--root", default=None, help="folder with the real downloads")
    ap.add_argument("--limit", type=int, default=2000, help="samples per split of real data")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(a.quick, a.out, a.root, a.limit)
