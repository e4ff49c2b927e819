"""The ``neurorl`` command line.

Commands:
    neurorl --version
    neurorl list [neurons|connectivity|rules|envs|encoders|decoders|agents|chips]
    neurorl demo [--out PNG]         simulate a small network and print/plot its activity
    neurorl run CONFIG [--set k=v]   run an experiment config (see experiments/)
    neurorl validate CONFIG          validate a config without running it
    neurorl sweep SWEEP.yaml         expand and run a sweep
    neurorl resume RUN_DIR           resume an interrupted run from its last checkpoint
    neurorl report RUN_DIR           draw plots and a summary table of a run or sweep
    neurorl eval RUN_DIR [--seed N] [--episodes K] [--greedy] [--video]
                                     evaluate a trained run's frozen policy
    neurorl data list|download NAME  event datasets through tonic (N-MNIST, DVS-Gesture, SHD)
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from neurorl import __version__
from neurorl.errors import NeurorlError

#: exit status after SIGTERM (128 + 15, what a shell reports for a process SIGTERM killed)
EXIT_TERMINATED = 143

#: where ``neurorl demo`` writes its plot unless told otherwise (next to the runs, not the cwd)
DEMO_OUT = Path("runs") / "demo" / "raster.png"


def _defaults_text(items) -> str:
    """``name=default, ...`` for (name, default) pairs (arrays shown as plain numbers)."""
    out = []
    for k, v in items:
        if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            v = v.item()
        if isinstance(v, float):
            v = float(f"{v:.6g}")
        out.append(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}")
    return ", ".join(out)


def _signature_defaults(fn: Callable, skip: Sequence[str] = ()) -> str:
    """The keyword parameters of ``fn`` that have a default, as ``name=default, ...``."""
    import inspect

    params = inspect.signature(fn).parameters.values()
    return _defaults_text(
        (p.name, p.default)
        for p in params
        if p.default is not inspect.Parameter.empty and p.name not in skip
    )


def _summary(docstring: str | None) -> str:
    """A docstring's first paragraph as one line (a summary that wraps onto a second line of
    the docstring is kept whole, not cut at the line break)."""
    lines = (docstring or "").strip().splitlines()
    para = []
    for line in lines:
        if not line.strip():
            break
        para.append(line.strip())
    return " ".join(para)


def _registries() -> dict[str, Callable[[], list[tuple[str, str, str]]]]:
    """Lazily imported registries -> rows of (name, one-line description, parameters with their
    defaults: what a config or ``NeuronGroup``/``Connection``/``LearningRule`` may set)."""
    import dataclasses

    def doc(obj: object) -> str:
        return _summary(getattr(obj, "__doc__", None))

    def neurons():
        from neurorl.core.neurons import NEURONS

        rows = []
        for k, v in NEURONS.items():
            cls = getattr(v, "params_cls", None)
            fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
            rows.append((k, doc(v.step) or doc(cls),
                         _defaults_text((f.name, f.default) for f in fields)))
        return rows

    def connectivity():
        from neurorl.core.connectivity import CONNECTIVITY

        return [(k, doc(v), _signature_defaults(v)) for k, v in CONNECTIVITY.items()]

    def rules():
        from neurorl.plasticity import RULES

        return [(k, doc(v), _signature_defaults(v)) for k, v in RULES.items()]

    def envs():
        from neurorl.envs import ENVS, make

        rows = []
        for k, v in ENVS.items():
            try:
                _, params = make(k)
                fields = dataclasses.fields(params) if dataclasses.is_dataclass(params) else ()
                text = _defaults_text((f.name, getattr(params, f.name)) for f in fields)
            except Exception:  # an env that cannot be made here must not hide the others
                text = ""
            rows.append((k, doc(v), text))
        return rows

    def encoders():
        from neurorl.encoding import ENCODERS

        return [(k, doc(v), _signature_defaults(v, skip=("substeps",)))
                for k, v in ENCODERS.items()]

    def decoders():
        from neurorl.decoding import DECODERS

        return [(k, doc(v), "") for k, v in DECODERS.items()]

    def agents():
        from neurorl.agents import AGENTS
        from neurorl.experiment.config import agent_defaults

        return [(k, doc(v), _defaults_text(sorted(agent_defaults(k).items())))
                for k, v in AGENTS.items()]

    def context():
        from neurorl.agents.context import DEFAULTS

        return [("agent.context", "a store of weight sets, one per context inferred from "
                 "forward-model prediction errors (neurorl.agents.context; eprop_ac, bptt_ac)",
                 _defaults_text(sorted(DEFAULTS.items())))]

    def chips():
        from neurorl.hardware.chips import CHIPS

        rows = []
        for k, c in CHIPS.items():
            desc = getattr(c, "description", "") or doc(c)
            unverified = getattr(c, "unverified", ())
            if unverified:
                desc += f"  [unverified: {', '.join(unverified)}]"
            rows.append((k, desc, ""))
        return rows

    return {
        "neurons": neurons,
        "connectivity": connectivity,
        "rules": rules,
        "envs": envs,
        "encoders": encoders,
        "decoders": decoders,
        "agents": agents,
        "context": context,
        "chips": chips,
    }


#: what the parameters column of ``neurorl list`` holds, per registry (where to set them)
_PARAM_COLUMN = {
    "neurons": "params (NeuronGroup params / network.groups.N.params)",
    "connectivity": "arguments (Connection / network.connections.N)",
    "rules": "params (LearningRule params / network.rules.N.params)",
    "envs": "env.params (and shifts) with defaults",
    "encoders": "arguments (network.encoder)",
    "agents": "agent.hyper with defaults",
    "context": "agent.context with defaults",
}


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from neurorl.errors import lookup

    regs = _registries()
    names = list(regs) if args.what is None else [args.what]
    console = Console()
    for name in names:
        fn = lookup(regs, name, "registry", field="neurorl list WHAT")
        try:
            rows = fn()
        except ImportError as e:  # a subpackage that is not built yet must not hide the others
            rows = [("(unavailable)", str(e), "")]
        table = Table(title=name, show_lines=name in _PARAM_COLUMN)
        # every cell wraps (a word longer than its column folds onto the next line): rich's
        # default overflow cut long names and `key=default` items with an ellipsis
        longest = max((len(str(r[0])) for r in rows), default=4)
        table.add_column("name", style="bold", overflow="fold",
                         min_width=min(longest, console.width // 4))
        table.add_column("description", overflow="fold")
        if name in _PARAM_COLUMN:
            table.add_column(_PARAM_COLUMN[name], overflow="fold")
        from rich.markup import escape

        for row in rows:
            cells = row if name in _PARAM_COLUMN else row[:2]
            table.add_row(*(escape(str(c)) for c in cells))
        console.print(table)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from neurorl.experiment.demo import run_demo

    run_demo(out=args.out, steps=args.steps, seed=args.seed)
    return 0


_SET_HELP = (
    "override one config field by its dotted path (repeatable); the value is read as YAML "
    "(1e-3, true, [1, 2]), e.g. --set training.steps=20000 --set agent.hyper.lr=3e-4"
)
_WANDB_HELP = (
    "wandb mode for this run, overriding the config's logging.wandb: offline (default; sync "
    "later with `wandb sync`), online, or disabled"
)
_NO_PROGRESS_HELP = (
    "print nothing while training (by default a progress bar on a terminal, one line per "
    "chunk when the output goes to a file or pipe)"
)


def _add(sub: argparse._SubParsersAction, name: str, help: str, description: str, examples: str):
    return sub.add_parser(
        name,
        allow_abbrev=False,  # `--o=1` from `wandb agent` is a parameter, not `--out`
        help=help,
        description=textwrap.fill(description, 88),  # the raw formatter keeps the examples' lines
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _experiment_commands(sub: argparse._SubParsersAction) -> None:
    p = _add(
        sub,
        "run",
        "run an experiment config",
        "Validate an experiment config, train every seed (one jitted scan, vmapped over seeds), "
        "and write a run directory: config.yaml, episodes.jsonl, chunks.jsonl, checkpoint.npz "
        "(with checkpoint.json), summary.json, report.md, plots/ and an offline wandb run per "
        "seed under wandb/. Every field a config may hold: `neurorl list` (agent.hyper, "
        "env.params, ...) and `neurorl validate`. For a sweep file use `neurorl sweep`.",
        "  neurorl run experiments/quickstart.yaml\n"
        "  neurorl run experiments/cartpole_eprop.yaml --set training.steps=20000 "
        "--out runs/eprop-short\n"
        "  neurorl run experiments/quickstart.yaml --wandb disabled --no-progress > log.txt",
    )
    # run/validate also take `--name=value` (how `wandb agent` passes sweep parameters, see
    # experiment/sweep.py): no abbreviations, so `--o=1` is a parameter, not `--out`
    p.set_defaults(agent_args=True)
    p.add_argument("config", help="experiment YAML (see experiments/*.yaml)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help=_SET_HELP
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="RUN_DIR",
        help="run directory (default: <logging.dir>/<name>-<date>-<time>, logging.dir is runs)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (its checkpoint, logs, report and plots); "
        "without it such a directory is refused (exit 2): resume it or choose another --out",
    )
    p.add_argument(
        "--wandb", choices=["online", "offline", "disabled"], default=None, help=_WANDB_HELP
    )
    p.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS_HELP)
    p.set_defaults(func=lambda a: _runner().cmd_run(a))

    p = _add(
        sub,
        "validate",
        "validate a config without running it",
        "Check an experiment config as `neurorl run` would before compiling anything: field "
        "names and types, registry names (env, agent, chip, shift kinds), agent "
        "hyperparameters, env parameters and chip limits. Prints one line and exits 0 when "
        "valid; names the field, the value and what is allowed otherwise (exit 2).",
        "  neurorl validate experiments/lifelong_cartpole.yaml\n"
        "  neurorl validate experiments/cartpole_eprop.yaml --set agent.hyper.lr=3e-4",
    )
    # run/validate also take `--name=value` (how `wandb agent` passes sweep parameters, see
    # experiment/sweep.py): no abbreviations, so `--o=1` is a parameter, not `--out`
    p.set_defaults(agent_args=True)
    p.add_argument("config", help="experiment YAML (see experiments/*.yaml)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help=_SET_HELP
    )
    p.set_defaults(func=lambda a: _runner().cmd_validate(a))

    p = _add(
        sub,
        "sweep",
        "expand and run a sweep (wandb sweep schema)",
        "Expand a sweep file (wandb's sweep schema: `program:` is the experiment config every "
        "member overrides, `parameters:` the dotted config paths it varies) locally and run its "
        "members. Each member is one seed: list the seeds under `training.seed: {values: [0, 1, "
        "2]}` (the program's training.n_seeds is replaced by the number of seeds; without "
        "training.seed every member runs the program's training.seed alone, as each `neurorl run` "
        "a `wandb agent` starts does). Members that differ "
        "only in training.seed run as one compiled, seed-vmapped group. Ends with plots and a "
        "table of the groups: median, IQR and IQM of the final return over seeds, by what the "
        "sweep varies.",
        "  neurorl sweep experiments/sweeps/rules.yaml\n"
        "  neurorl sweep experiments/sweeps/rules.yaml --set training.steps=20480\n"
        "  neurorl sweep experiments/sweeps/chips.yaml --launcher ray --ray-address auto",
    )
    p.add_argument("sweep", help="sweep YAML (see experiments/sweeps/*.yaml)")
    p.add_argument(
        "--out",
        default=None,
        metavar="SWEEP_DIR",
        help="sweep directory, one group-NNN/ run directory per group "
        "(default: <logging.dir>/sweep-<file name>-<date>-<time>)",
    )
    p.add_argument(
        "--wandb", choices=["online", "offline", "disabled"], default=None, help=_WANDB_HELP
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override every member after its sweep values (repeatable; also replaces a swept "
        "value), e.g. --set training.steps=4096",
    )
    p.add_argument(
        "--launcher",
        choices=["local", "ray"],
        default="local",
        help="local: groups one after another here (default); ray: one Ray task per group "
        '(pip install "neurorl[ray]")',
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="Ray cluster address (default: RAY_ADDRESS or a new local instance)",
    )
    p.add_argument(
        "--ray-cpus-per-group",
        type=float,
        default=1.0,
        metavar="N",
        help="CPUs Ray reserves for each group's task (default 1)",
    )
    p.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS_HELP)
    p.set_defaults(func=lambda a: _runner().cmd_sweep(a))

    p = _add(
        sub,
        "resume",
        "resume an interrupted run or sweep from its last checkpoint",
        "Continue a run (or every unfinished group of a sweep) from the checkpoint written "
        "after its last chunk; the logs are cut back to the checkpoint, so the result equals an "
        "uninterrupted run. A finished run is not trained again: its plots, report.md and tables "
        "are drawn again. A run stopped by Ctrl-C or `kill` (SIGTERM) continues from the chunk "
        "after its last checkpoint; after a hard kill (SIGKILL, power loss) at most the chunk in "
        "flight is redone. A run a numeric fault stopped after a checkpoint is not resumed "
        "unchanged (the same config and PRNG keys from the same checkpoint replay the same "
        "fault, exit 3): change what caused it with --set (agent.hyper.*, "
        "training.max_weight_growth, training.max_saturation; the checkpoint's weights are kept "
        "and summary.json's config_changes records what changed at which env step). A resumed "
        "sweep names the groups a fault stopped and does not rerun them unless "
        "--retry-faulted.",
        "  neurorl resume runs/quickstart-20261123-101500\n"
        "  neurorl resume runs/quickstart-20261123-101500 --set agent.hyper.lr=1e-4\n"
        "  neurorl resume runs/sweep-rules-20261123-101500\n"
        "  neurorl resume runs/sweep-rules-20261123-101500 --retry-faulted "
        "--set agent.hyper.lr=1e-4",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run or sweep directory")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
        help="go on from the checkpoint with this config field changed (repeatable; read as "
        "YAML and validated as `neurorl run` does): agent.hyper.* (values the training step "
        "reads, e.g. agent.hyper.lr=1e-4), training.max_weight_growth, "
        "training.max_saturation. In a sweep: the groups --retry-faulted retries",
    )
    p.add_argument(
        "--force", action="store_true",
        help="resume a run (or --retry-faulted groups) a numeric fault stopped without changing "
        "anything: the same code replays the same fault, so this is only useful after changing "
        "neurorl itself (a fix, another version)",
    )
    p.add_argument(
        "--retry-faulted", action="store_true",
        help="sweep: also go on with the groups a numeric fault stopped (from their checkpoint, "
        "or from scratch without one), with the --set changes (or --force)",
    )
    p.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS_HELP)
    p.set_defaults(func=lambda a: _runner().cmd_resume(a))

    p = _add(
        sub,
        "export",
        "write the trained network of one seed of a run to NIR",
        "Export the network a run trained (its groups and connections with the learned weights "
        "of one seed, read from the run's last checkpoint) to a NIR file that snnTorch, Norse, "
        "Spyx and the chip toolchains read.",
        "  neurorl export runs/quickstart-20261123-101500 --to nir\n"
        "  neurorl export runs/quickstart-20261123-101500 --seed 1 --out agent.nir\n"
        "  neurorl export RUN_DIR --recurrent subgraph --outputs hidden --prune  # snnTorch 1.0\n"
        "  neurorl export RUN_DIR --nir-version 1.0.4              # for sinabs / rockpool",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `neurorl run`")
    p.add_argument("--to", default="nir", metavar="FORMAT", help="output format: nir")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="which seed of the run (default: its first)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output file (default RUN_DIR/export/seed<N>.nir)")
    p.add_argument("--nir-version", default=None, metavar="V",
                   help="write the layout of an older nir for readers pinned to it: 1.0.4 "
                        "(sinabs 3.1, rockpool 3.1); default: the installed nir's")
    p.add_argument("--recurrent", default="edges", metavar="FORM",
                   help="recurrent layers as 'edges' (flat, default) or 'subgraph' (snnTorch's "
                        "RLeaky form, the one snnTorch 1.0 imports correctly)")
    p.add_argument("--outputs", default=None, metavar="GROUPS",
                   help="comma-separated groups whose spikes are the graph's output (default: "
                        "the network's readout)")
    p.add_argument("--prune", action="store_true",
                   help="leave out groups that feed no output (with --outputs hidden: the LI "
                        "readout, which snnTorch cannot map)")
    p.set_defaults(func=cmd_export)

    p = _add(
        sub,
        "eval",
        "run a trained run's frozen policy (act only) for some episodes",
        "Load a run's last checkpoint and act without learning (sampled, or the policy's mode "
        "with --greedy) for some episodes; results and the video land in RUN_DIR/eval/.",
        "  neurorl eval runs/quickstart-20261123-101500 --episodes 20 --greedy\n"
        "  neurorl eval runs/quickstart-20261123-101500 --video",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `neurorl run`")
    p.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    p.add_argument("--greedy", action="store_true", help="the policy's mode instead of a sample")
    p.add_argument("--member", type=int, default=0, help="which seed of the run")
    p.add_argument("--video", action="store_true", help="save the first episode's frames")
    p.add_argument("--video-format", choices=["gif", "mp4"], default="gif",
                   help="format of the --video file (default gif)")
    p.set_defaults(func=_cmd_eval)

    p = _add(
        sub,
        "report",
        "plots and a summary table of a run or sweep directory",
        "Redraw a finished run's or sweep's plots (plots/lifelong.png, compare.png with two "
        "labels or more, return_vs_energy.png, lifelong.csv with the curves' data) and "
        "report.md, and print the tables. Final return everywhere: the mean return of the last "
        "training.episode_window episodes.",
        "  neurorl report runs/quickstart-20261123-101500\n"
        "  neurorl report runs/sweep-rules-20261123-101500",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run or sweep directory")
    p.set_defaults(func=lambda a: _runner().cmd_report(a))


def _cmd_eval(args: argparse.Namespace) -> int:
    from neurorl.experiment.eval import evaluate

    out = evaluate(
        args.run_dir,
        seed=args.seed,
        episodes=args.episodes,
        greedy=args.greedy,
        member=args.member,
        video=args.video,
        video_format=args.video_format,
    )
    mode = "greedy" if out["greedy"] else "sampled"
    print(
        f"{out['agent']} on {out['env']} (member {out['member']}, {mode}): "
        f"return {out['mean_return']:.2f} +- {out['std_return']:.2f} over "
        f"{out['episodes']} episodes (seeds {out['seed']}..{out['seed'] + out['episodes'] - 1})"
    )
    if "video" in out:
        print(f"video: {out['video']}")
    return 0


def _data_commands(sub: argparse._SubParsersAction) -> None:
    p = _add(
        sub,
        "data",
        "event datasets: list, download (tonic)",
        "The event datasets neurorl trains on (N-MNIST, DVS-Gesture, SHD), read by tonic: list "
        "them, or download one with tonic's checksummed downloader (needs a network).",
        "  neurorl data list\n  neurorl data download shd --root ~/neurorl-data",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="{list,download}",
                            help="list the datasets, or download one")
    q = _add(dsub, "list", "the event datasets neurorl loads through tonic",
             "Print each dataset's sensor size, classes and description.", "  neurorl data list")
    q.set_defaults(func=cmd_data_list)
    q = _add(dsub, "download", "download a dataset with tonic (needs a network)",
             "Download a dataset into tonic's save_to directory.",
             "  neurorl data download nmnist --split train")
    q.add_argument("name", help="nmnist, dvsgesture or shd")
    q.add_argument("--root", default="~/neurorl-data", help="tonic's save_to directory")
    q.add_argument("--split", choices=["train", "test", "both"], default="both")
    q.set_defaults(func=cmd_data_download)
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])


def cmd_data_list(args: argparse.Namespace) -> int:
    from neurorl.data.events import DATASETS

    for name, info in DATASETS.items():
        w, h, pol = info.sensor_size
        print(f"{name:11s} {w}x{h}x{pol}, {info.n_classes} classes  {info.description}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from neurorl.data.events import dataset_info, download

    dataset_info(args.name)  # unknown name: ConfigError with the closest one, before any I/O
    splits = ("train", "test") if args.split == "both" else (args.split,)
    where = download(args.name, args.root, splits)
    print(f"{args.name}: downloaded to {where}")
    return 0


def _runner():
    from neurorl.experiment import runner

    return runner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurorl",
        description="Spiking agents, local plasticity, shifting control tasks, neuromorphic "
        "chips.\n`neurorl COMMAND --help` describes each command.",
        epilog="examples:\n"
        "  neurorl run experiments/quickstart.yaml\n"
        "  neurorl sweep experiments/sweeps/rules.yaml --set training.steps=20480\n"
        "  neurorl report runs/quickstart-20261123-101500\n"
        "  neurorl list chips",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"neurorl {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _add(
        sub,
        "list",
        "list registered components",
        "List what the registries hold, with a one-line description each: neuron models, "
        "connectivity rules, learning rules, environments, encoders, decoders, agents, the "
        "contextual-inference settings and chips (with the constants not yet checked against a "
        "source); for neurons, connectivity, rules, envs, encoders, agents and context also the "
        "parameters a config may set, with their defaults (agent.hyper, agent.context, "
        "env.params, a network's params).",
        "  neurorl list\n  neurorl list chips\n  neurorl list agents   # agent.hyper names and "
        "defaults\n  neurorl list context  # agent.context settings and defaults",
    )
    p.add_argument(
        "what",
        nargs="?",
        default=None,
        help="neurons, connectivity, rules, envs, encoders, decoders, agents, context or chips "
        "(default: all)",
    )
    p.set_defaults(func=cmd_list)

    p = _add(
        sub,
        "demo",
        "simulate a small spiking network and plot its activity",
        "Compile a small excitatory/inhibitory network through the N-HAL (an input population, "
        "Dale's law, 1 ms delays, STDP on the input connection), simulate it, print the firing "
        "rates and the weight change, and draw a raster plot with membrane traces.",
        "  neurorl demo\n  neurorl demo --steps 1000 --out runs/demo/long.png",
    )
    p.add_argument(
        "--out",
        default=str(DEMO_OUT),
        metavar="PNG",
        help=f"where to write the raster plot (default: {DEMO_OUT})",
    )
    p.add_argument("--steps", type=int, default=500, help="simulated 1 ms steps (default 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_demo)

    _experiment_commands(sub)
    _data_commands(sub)
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    from neurorl.experiment.export import export_run

    path = export_run(args.run_dir, seed=args.seed, to=args.to, out=args.out,
                      nir_version=args.nir_version, recurrent=args.recurrent, prune=args.prune,
                      outputs=None if args.outputs is None else args.outputs.split(","))
    print(f"wrote {path}")
    _print_nir_lossy(path)
    return 0


def _print_nir_lossy(path: str | Path) -> None:
    """Name what the NIR file could not say exactly (``metadata["neurorl_lossy"]``), one line
    each, so an export's approximations are seen without opening the file."""
    import json

    import nir

    try:
        lossy = json.loads(str(nir.read(str(path)).metadata.get("neurorl_lossy", "[]")))
    except (OSError, ValueError, KeyError):  # the file was written; its notes are optional
        return
    if lossy:
        print("approximated in NIR (metadata['neurorl_lossy']):")
        for note in lossy:
            print(f"  {note}")


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; for ``run``/``validate``, ``--name=value`` extras (what ``wandb agent``
    passes) become overrides applied before the ``--set`` ones."""
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "agent_args", False):
        from neurorl.experiment.sweep import agent_overrides

        try:
            args.overrides = agent_overrides(extra) + list(args.overrides)
        except NeurorlError as e:
            parser.exit(2, f"neurorl: error: {e}\n")
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    """Run a subcommand; every expected failure is one line on stderr and a documented code.

    Exit codes (``neurorl.errors``): 0 done; 2 a bad config, argument, file or checkpoint;
    3 the run stopped on a numeric fault (a non-finite weight, state, observation or return, or
    diverging / saturated weights: ``training.max_weight_growth``, ``training.max_saturation``);
    4 the filesystem refused a read
    or write; 5 another process holds the run directory; 130 interrupted (Ctrl-C), 143 stopped
    by SIGTERM (``kill``, ``timeout``, a cluster scheduler), both with the ``neurorl resume``
    command to continue: SIGTERM stops a run the way Ctrl-C does (after the chunk in flight,
    last checkpoint kept) instead of killing it without a word.
    """
    import signal

    from neurorl import errors as E

    def fail(msg: str, code: int) -> int:
        print(f"neurorl: error: {msg}", file=sys.stderr)
        return code

    terminated = []

    def on_sigterm(signum, frame):  # handled like Ctrl-C by the runner
        terminated.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a worker): leave SIGTERM alone
        previous = None
    interrupted = E.EXIT_INTERRUPTED
    try:
        return int(args.func(args) or 0)
    except E.RunInterrupted as e:
        print(f"neurorl: {e}" + (" (stopped by SIGTERM)" if terminated else ""), file=sys.stderr)
        return EXIT_TERMINATED if terminated else interrupted
    except KeyboardInterrupt:
        print(
            f"neurorl: {'stopped by SIGTERM' if terminated else 'interrupted'} (nothing was "
            "running that needs resuming)",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if terminated else interrupted
    except E.NumericFaultError as e:  # a fault now, or a resume of a run one stopped
        return fail(str(e), E.EXIT_NON_FINITE)
    except E.RunLockedError as e:
        return fail(str(e), E.EXIT_LOCKED)
    except E.RunFileError as e:
        return fail(str(e), E.EXIT_FILESYSTEM)
    except NeurorlError as e:
        return fail(str(e), E.EXIT_USER_ERROR)
    except OSError as e:
        from neurorl.experiment.runner import file_error_message

        return fail(file_error_message(e), E.EXIT_FILESYSTEM)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
