"""Scaling benchmark: CUBA and 10x / 100x CUBA at constant fan-in, neurorl (each propagation
path) against NEST (1 and 2 threads) and Brian2, in one run.

The network is ``benchmarks/cuba.py``'s (Vogels & Abbott 2005; Brette et al. 2007 benchmark 2):
``N = 4000 x scale`` LIF neurons (80 % excitatory), connection probability ``0.02 / scale`` so
every neuron keeps ~80 inputs (64 E + 16 I) and ~ 320,000 x scale synapses; 1 s of model time at
dt = 0.1 ms. NEST (``iaf_psc_exp``) is built from the *same* edge lists, weights and v(0) as
neurorl's compiled network (the drawn network is identical, only the simulators differ); Brian2
(if importable; it needs numpy < 2.4, so a side venv) draws its own network of the same
statistics.

Measured per simulator and size: wall time of the simulation of 1 s (after a warm-up/compile run
for neurorl; NEST's and Brian2's build times are reported apart), the mean rate, memory per
synapse (neurorl: bytes of the connection structure + weights on the device; NEST: growth of the
process's resident memory from before the build to after it, divided by the synapses), and cost
per spike (wall time / spikes). neurorl runs ``CompiledNetwork.simulate`` in chunks of model
time (spike counts only: a [T, N] record of 400,000 neurons would not fit).

Every measurement runs in a process of its own (``--worker``), pinned with ``taskset``: the
neurorl rows on 1 core (``taskset -c 0``, XLA's multi-threaded Eigen off) beside NEST 1 thread (also
on core 0), and on 2 cores (``taskset -c 0,1``) beside NEST 2 threads, so that no simulator's
thread pool contends with another's (NEST in the JAX process ran its 2-thread row 25x slow).
NEST reads the network neurorl compiled (edges, weights, v(0)) from a file the first neurorl
worker writes, and never imports JAX. NEST at 100x needs ~17 GiB resident: it runs only when
``MemAvailable`` (/proc/meminfo) is at least ``--nest-min-free-gib`` (default 20), else its row
is reported as skipped with the memory seen.

Run (one machine, nothing else on it; the lead's command, everything in one go):
    python benchmarks/scale.py
    .venv-bench/bin/python -m benchmarks.scale --scales 1 --brian-only   # Brian2 rows, merged
Writes benchmarks/results/scale.json, scale.md and scale.png (log-log cost vs size).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and "--worker" in sys.argv and "--cores" in sys.argv:
    if sys.argv[sys.argv.index("--cores") + 1] == "1":  # before jax starts its thread pools
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_multi_thread_eigen=false").strip()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/scale.py`

import numpy as np  # noqa: E402

from benchmarks.common import machine, write_results  # noqa: E402
from benchmarks.cuba import (  # noqa: E402
    DT,
    EL,
    N_E,
    N_I,
    T_REF,
    TAUE,
    TAUI,
    TAUM,
    VR,
    VT,
    WE,
    WI,
    P,
)

RESULTS = Path(__file__).parent / "results"


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(scale: int, propagation: str, seed: int = 0):
    """CUBA with ``4000 x scale`` neurons at constant fan-in (p = 0.02 / scale)."""
    from neurorl.core import Connection, Network, NeuronGroup

    lif = {"tau_mem": TAUM, "v_th": VT - VR, "v_reset": 0.0, "dt": DT, "t_ref": T_REF,
           "reset": "zero", "integration": "exponential", "r": 1.0}
    exc = NeuronGroup(N_E * scale, "LIF", lif, name="exc", bias=EL - VR, v_init=(0.0, VT - VR),
                      sign="excitatory")
    inh = NeuronGroup(N_I * scale, "LIF", lif, name="inh", bias=EL - VR, v_init=(0.0, VT - VR),
                      sign="inhibitory")
    objs = [exc, inh]
    for src, w, tau in ((exc, WE, TAUE), (inh, WI, TAUI)):
        for tgt in (exc, inh):
            objs.append(Connection(src, tgt, "probabilistic", p=P / scale, weight=w, delay=1,
                                   synapse="exponential", tau_syn=tau, storage="sparse",
                                   propagation=propagation, rate_hz=10.0))
    return Network(objs).compile(backend="jax", seed=seed)


def structure_bytes(cn, state) -> int:
    import jax

    leaves = jax.tree.leaves(cn.structure) + jax.tree.leaves(state["weights"])
    return int(sum(x.size * x.dtype.itemsize for x in leaves))


def run_neurorl(cn, duration_ms: float, chunk_ms: float) -> dict:
    import jax
    import jax.numpy as jnp

    steps, chunk = int(round(duration_ms / DT)), int(round(chunk_ms / DT))
    state = cn.init(jax.random.PRNGKey(0))
    w, dyn0, tr = state["weights"], cn.dynamic(state), cn.traces(state)

    def once():
        dyn, total, done = dyn0, 0.0, 0
        while done < steps:
            k = min(chunk, steps - done)
            dyn, _, _, counts = cn.simulate(w, dyn, tr, steps=k)
            total = total + sum(jnp.sum(c) for c in counts.values())
            done += k
        return float(total)

    t0 = time.perf_counter()
    once()  # compile (one per distinct chunk length) + first run
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_spikes = once()
    wall = time.perf_counter() - t0
    n = sum(g.n for g in cn.groups.values())
    syn = int(sum(cn.n_synapses().values()))
    return {"wall_s": wall, "compile_and_first_s": t_first, "spikes": n_spikes,
            "rate_hz": n_spikes / n / (duration_ms / 1e3), "synapses": syn,
            "bytes_per_synapse": structure_bytes(cn, state) / syn,
            "propagation": cn.propagation(), "state": state}


def dump_network(cn, state, path: Path) -> None:
    """What NEST needs of the compiled network (groups' v(0); per connection its edges,
    weights and delay) in one ``.npz``, so the NEST worker never imports JAX."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"groups": list(cn.groups), "connections": []}
    for g in cn.groups:
        arrays[f"v0/{g}"] = np.asarray(state["neurons"][g].v, np.float64)
    for i, (name, c) in enumerate(cn.connections.items()):
        conf = cn._conf[name]
        arrays[f"pre/{i}"], arrays[f"post/{i}"] = conf["pre"], conf["post"]
        arrays[f"w/{i}"] = np.asarray(state["weights"][name])[conf["post"], conf["slot"]]
        meta["connections"].append([c.source.name, c.target.name, c.delay])
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


def run_nest(net_file: Path, duration_ms: float, threads: int) -> dict | None:
    """The compiled network (from :func:`dump_network`) in NEST's iaf_psc_exp (units as
    ``neurorl.hardware.pynn.nest_spec``: C_m = tau_m, so currents map 1:1)."""
    try:
        import nest
    except ImportError:
        return None
    data = np.load(net_file)
    meta = json.loads(data["meta"].tobytes())
    nest.set_verbosity("M_ERROR") if hasattr(nest, "set_verbosity") else None
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT, "local_num_threads": threads, "rng_seed": 1})
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    pops, recs, n = {}, {}, 0
    for g in meta["groups"]:
        v0 = data[f"v0/{g}"]
        n += len(v0)
        pop = nest.Create("iaf_psc_exp", len(v0), params={
            "tau_m": TAUM, "C_m": TAUM, "E_L": 0.0, "V_reset": 0.0, "V_th": VT - VR,
            "t_ref": T_REF, "I_e": EL - VR, "tau_syn_ex": TAUE, "tau_syn_in": TAUI})
        pop.set({"V_m": v0.tolist()})
        rec = nest.Create("spike_recorder", params={"record_to": "memory"})
        nest.Connect(pop, rec)
        pops[g], recs[g] = pop, rec
    syn = 0
    for i, (src, tgt, delay) in enumerate(meta["connections"]):
        w = data[f"w/{i}"].astype(np.float64)
        first_s, first_t = pops[src][0].global_id, pops[tgt][0].global_id
        nest.Connect(data[f"pre/{i}"] + first_s, data[f"post/{i}"] + first_t, "one_to_one",
                     {"synapse_model": "static_synapse", "weight": w,
                      "delay": np.full(len(w), DT * delay)})
        syn += len(w)
        del w
    build_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    t0 = time.perf_counter()
    nest.Simulate(duration_ms)
    wall = time.perf_counter() - t0
    n_spikes = sum(int(r.get("n_events")) for r in recs.values())
    return {"wall_s": wall, "build_s": build_s, "spikes": n_spikes, "threads": threads,
            "synapses": syn,
            "rate_hz": n_spikes / n / (duration_ms / 1e3),
            "bytes_per_synapse": (rss1 - rss0) / syn, "nest": nest.__version__}


def run_brian2(scale: int, duration_ms: float) -> dict | None:
    try:
        import brian2 as b2
    except ImportError:
        return None
    from brian2 import ms, mV

    b2.prefs.codegen.target = "cython"
    b2.start_scope()
    b2.seed(0)
    taum, taue, taui = TAUM * ms, TAUE * ms, TAUI * ms  # noqa: F841
    Vt, Vr, El = VT * mV, VR * mV, EL * mV  # noqa: F841
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    n, ne = 4000 * scale, N_E * scale
    t0 = time.perf_counter()
    g = b2.NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr",
                       refractory=(T_REF + DT) * ms, method="linear")
    g.v = "Vr + rand() * (Vt - Vr)"
    we, wi = WE * mV, WI * mV  # noqa: F841
    ce = b2.Synapses(g, g, on_pre="ge += we")
    ci = b2.Synapses(g, g, on_pre="gi += wi")
    ce.connect(f"i<{ne}", p=P / scale)
    ci.connect(f"i>={ne}", p=P / scale)
    mon = b2.SpikeMonitor(g, record=False)
    net = b2.Network(g, ce, ci, mon)
    net.run(0 * ms)  # code generation and compilation
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.run(duration_ms * ms)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "build_s": build_s, "spikes": int(mon.num_spikes),
            "rate_hz": float(mon.num_spikes) / n / (duration_ms / 1e3),
            "synapses": int(len(ce) + len(ci)), "brian2": b2.__version__}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    sims = sorted({r["simulator"] for r in rows})
    for s in sims:
        rr = sorted((r for r in rows if r["simulator"] == s), key=lambda r: r["neurons"])
        x = [r["neurons"] for r in rr]
        axes[0].loglog(x, [r["wall_s"] for r in rr], "o-", label=s)
        axes[1].loglog(x, [r["us_per_spike"] for r in rr], "o-", label=s)
    axes[0].set(xlabel="neurons (fan-in 80)", ylabel="wall time for 1 s model time (s)")
    axes[1].set(xlabel="neurons (fan-in 80)", ylabel="wall time per spike (us)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def mem_available_gib() -> float:
    """``MemAvailable`` of /proc/meminfo (GiB)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def pin(cores: int) -> list[str]:
    """``taskset -c 0`` / ``0,1``: the first ``cores`` cores (nothing where taskset is missing
    or the machine has fewer cores)."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < cores:
        return []
    return ["taskset", "-c", ",".join(str(i) for i in range(cores))]


def worker(args) -> None:
    """One measurement in this process; prints ``ROW <json>``."""
    n = 4000 * args.scale
    if args.worker == "nest":
        ns = run_nest(Path(args.net), args.duration_ms, args.threads[0])
        if ns is None:
            print("ROW null", flush=True)
            return
        th = args.threads[0]
        row = {"simulator": f"NEST {ns['nest']} ({th} thread{'s' * (th > 1)})",
               "scale": args.scale, "neurons": n, "synapses": ns["synapses"],
               "wall_s": ns["wall_s"], "build_s": ns["build_s"], "rate_hz": ns["rate_hz"],
               "us_per_spike": 1e6 * ns["wall_s"] / max(ns["spikes"], 1),
               "bytes_per_synapse": ns["bytes_per_synapse"], "cores": th}
    else:
        import jax

        t0 = time.perf_counter()
        cn = build(args.scale, args.path)
        host_s = time.perf_counter() - t0
        r = run_neurorl(cn, args.duration_ms, args.chunk_ms)
        if args.net:
            dump_network(cn, r["state"], Path(args.net))
        core = f"{args.cores} core{'s' * (args.cores > 1)}"
        row = {"simulator": f"neurorl {args.path} ({jax.devices()[0].platform}, {core})",
               "scale": args.scale, "neurons": n, "synapses": r["synapses"],
               "wall_s": r["wall_s"], "build_s": host_s + r["compile_and_first_s"],
               "rate_hz": r["rate_hz"], "us_per_spike": 1e6 * r["wall_s"] / max(r["spikes"], 1),
               "bytes_per_synapse": r["bytes_per_synapse"], "propagation": r["propagation"],
               "cores": args.cores}
    print("ROW " + json.dumps(row), flush=True)


def spawn(argv: list[str], cores: int) -> dict | None:
    """Run one worker pinned to ``cores`` cores; its row (None: NEST not importable)."""
    cmd = pin(cores) + [sys.executable, str(Path(__file__).resolve()), "--worker", *argv,
                        "--cores", str(cores)]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    rows = [line[4:] for line in proc.stdout.splitlines() if line.startswith("ROW ")]
    if proc.returncode != 0 or not rows:
        raise RuntimeError(f"worker {argv} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(rows[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--paths", nargs="+", default=["event", "gather"],
                    choices=["event", "gather"])
    ap.add_argument("--gather-max-scale", type=int, default=10,
                    help="largest scale that also runs the gather path (every synapse, every "
                         "step)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="NEST threads = neurorl cores of the compared rows")
    ap.add_argument("--duration-ms", type=float, default=1000.0)
    ap.add_argument("--chunk-ms", type=float, default=100.0)
    ap.add_argument("--nest-min-free-gib", type=float, default=20.0,
                    help="NEST at scale >= 100 runs only with this much MemAvailable")
    ap.add_argument("--brian-only", action="store_true",
                    help="only the Brian2 rows (written to scale_brian2.json, which every "
                         "later save merges into scale.json/md/png)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite scale.md/png from scale.json and scale_brian2.json")
    ap.add_argument("--no-nest", action="store_true")
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of other scales from an existing scale.json")
    ap.add_argument("--worker", choices=["neurorl", "nest"], help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--cores", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--net", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    t_start = time.perf_counter()
    rows: list[dict] = []
    skipped: list[str] = []
    out_json = RESULTS / "scale.json"
    brian_json = RESULTS / "scale_brian2.json"
    stored = (json.loads(out_json.read_text())
              if (args.merge or args.report_only) and out_json.exists() else {})
    old = stored.get("rows", [])

    def save() -> None:  # after every row: a long run that is stopped keeps what it measured
        if args.brian_only:
            brian_json.write_text(json.dumps(rows, indent=1) + "\n")
            return
        extra = json.loads(brian_json.read_text()) if brian_json.exists() else []
        new = {(r["scale"], r["simulator"]) for r in rows + extra}
        allr = sorted([r for r in old if (r["scale"], r["simulator"]) not in new] + rows + extra,
                      key=lambda r: (r["scale"], r["simulator"]))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        total = time.perf_counter() - t_start
        run_args, mach = vars(args), machine()
        if args.report_only and stored:  # a rewrite keeps the measuring run's facts, not today's
            peak, total, skipped[:] = stored["peak_rss_bytes"], stored["total_s"], stored["skipped"]
            run_args, mach = stored["args"], stored["machine"]
        write_results("scale", {"rows": allr, "args": run_args, "peak_rss_bytes": peak,
                                "total_s": total, "skipped": skipped, "machine": mach},
                      [{k: v for k, v in r.items() if k != "propagation"} for r in allr],
                      _notes(allr, args, peak, total, skipped))
        plot(allr, RESULTS / "scale.png")

    def add(row: dict | None) -> None:
        if row is not None:
            rows.append(row)
            print({k: v for k, v in row.items() if k != "propagation"}, flush=True)
            save()

    tmp = Path(tempfile.mkdtemp(prefix="neurorl-scale-"))
    try:
        for scale in [] if args.report_only else args.scales:
            if args.brian_only:
                br = run_brian2(scale, args.duration_ms)
                if br is None:
                    raise SystemExit("brian2 is not importable in this interpreter")
                add({"simulator": f"Brian2 {br['brian2']} (cython)", "scale": scale,
                     "neurons": 4000 * scale, "synapses": br["synapses"],
                     "wall_s": br["wall_s"], "build_s": br["build_s"], "rate_hz": br["rate_hz"],
                     "us_per_spike": 1e6 * br["wall_s"] / max(br["spikes"], 1),
                     "bytes_per_synapse": None})
                continue
            net = tmp / f"cuba{scale}.npz"
            for path in args.paths:
                if path == "gather" and scale > args.gather_max_scale:
                    continue
                for cores in args.threads:
                    dump = ["--net", str(net)] if not net.exists() else []
                    add(spawn(["neurorl", "--scale", str(scale), "--path", path,
                               "--duration-ms", str(args.duration_ms),
                               "--chunk-ms", str(args.chunk_ms), *dump], cores))
            if args.no_nest or not net.exists():
                continue
            for th in args.threads:
                free = mem_available_gib()
                if scale >= 100 and free < args.nest_min_free_gib:
                    skipped.append(f"NEST {th} thread(s) at scale {scale}: MemAvailable "
                                   f"{free:.1f} GiB < {args.nest_min_free_gib:.0f} GiB")
                    print(skipped[-1], flush=True)
                    save()
                    continue
                row = spawn(["nest", "--scale", str(scale), "--threads", str(th),
                             "--duration-ms", str(args.duration_ms), "--net", str(net)], th)
                if row is None:
                    skipped.append("NEST: not importable (pip install -e '.[interop]')")
                    break
                add(row)
            net.unlink(missing_ok=True)
            gc.collect()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save()
    print(f"total {time.perf_counter() - t_start:.0f} s", flush=True)


def _notes(rows: list[dict], args, peak: int, total: float = 0.0,
           skipped: list[str] = ()) -> str:
    lines = [f"{args.duration_ms:.0f} ms of model time, dt = {DT} ms, fan-in ~80 at every size "
             f"(p = 0.02 / scale). Wall time of the simulation alone (neurorl after its compile "
             f"run, NEST/Brian2 after building; build_s apart). Every row ran in a process of "
             f"its own, pinned with taskset: 'N core(s)' rows of neurorl beside NEST with N "
             f"thread(s) (neurorl on 1 core: XLA's Eigen pool off). Largest resident "
             f"memory of a worker: {peak / 2**30:.1f} GiB; the whole run took {total:.0f} s. "
             "The event and gather paths simulate the same network: equal spike counts "
             "(tests/core/test_propagation.py checks spike-for-spike identity). neurorl's "
             "bytes/synapse: fan-in index + validity + weight (12 B per padded slot) and, for "
             "the event path, the fan-out table (8 B per padded slot); NEST's: growth of the "
             "process's resident memory over the build. The machine's load is in scale.json "
             "(machine.load): rerun `python benchmarks/scale.py` on a quiet machine before "
             "reading the times. ![cost vs size](scale.png)"]
    lines += [f"skipped: {s}" for s in skipped]
    for scale in sorted({r["scale"] for r in rows}):
        rr = {r["simulator"]: r for r in rows if r["scale"] == scale}
        nest = {r.get("cores"): r for s, r in rr.items() if s.startswith("NEST")}
        if not nest:
            lines.append(f"scale {scale}: no NEST row in this file.")
        for s, r in rr.items():
            ref = nest.get(r.get("cores"))
            if s.startswith("neurorl") and ref is not None:
                rel = 100 * (r["rate_hz"] / ref["rate_hz"] - 1)
                lines.append(f"scale {scale}: {s} rate {r['rate_hz']:.2f} Hz vs NEST "
                             f"{ref['rate_hz']:.2f} Hz ({rel:+.1f} %), time "
                             f"{r['wall_s'] / ref['wall_s']:.2f}x {ref['simulator']} "
                             f"({r['us_per_spike']:.1f} vs {ref['us_per_spike']:.1f} us per "
                             "spike)")
    return "\n\n".join(lines)


if __name__ == "__main__":
    main()
