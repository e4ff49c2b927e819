"""The ``neurorl`` command line.

Commands:
    neurorl --version
    neurorl list [neurons|connectivity|rules|envs|encoders|decoders|agents|chips]
    neurorl demo                     simulate a small network and print/plot its activity
    neurorl run CONFIG [--set k=v]   run an experiment config (see experiments/)
    neurorl validate CONFIG          validate a config without running it
    neurorl sweep SWEEP.yaml         expand and run a sweep
    neurorl resume RUN_DIR           resume an interrupted run from its last checkpoint
    neurorl report RUN_DIR           draw plots and a summary table of a run or sweep
    neurorl data list|download NAME  event datasets through tonic (N-MNIST, DVS-Gesture, SHD)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from neurorl import __version__
from neurorl.errors import NeurorlError


def _registries() -> dict[str, Callable[[], list[tuple[str, str]]]]:
    """Lazily imported registries -> rows of (name, one-line description)."""

    def doc(obj: object) -> str:
        text = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        return text[0] if text else ""

    def neurons():
        from neurorl.core.neurons import NEURONS

        return [(k, doc(v.step) or doc(v.params_cls)) for k, v in NEURONS.items()]

    def connectivity():
        from neurorl.core.connectivity import CONNECTIVITY

        return [(k, doc(v)) for k, v in CONNECTIVITY.items()]

    def rules():
        from neurorl.plasticity import RULES

        return [(k, doc(v)) for k, v in RULES.items()]

    def envs():
        from neurorl.envs import ENVS

        return [(k, doc(v)) for k, v in ENVS.items()]

    def encoders():
        from neurorl.encoding import ENCODERS

        return [(k, doc(v)) for k, v in ENCODERS.items()]

    def decoders():
        from neurorl.decoding import DECODERS

        return [(k, doc(v)) for k, v in DECODERS.items()]

    def agents():
        from neurorl.agents import AGENTS

        return [(k, doc(v)) for k, v in AGENTS.items()]

    def chips():
        from neurorl.hardware.chips import CHIPS

        rows = []
        for k, c in CHIPS.items():
            desc = getattr(c, "description", "") or doc(c)
            unverified = getattr(c, "unverified", ())
            if unverified:
                desc += f"  [unverified: {', '.join(unverified)}]"
            rows.append((k, desc))
        return rows

    return {
        "neurons": neurons,
        "connectivity": connectivity,
        "rules": rules,
        "envs": envs,
        "encoders": encoders,
        "decoders": decoders,
        "agents": agents,
        "chips": chips,
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
        table = Table(title=name, show_lines=False)
        table.add_column("name", style="bold")
        table.add_column("description")
        try:
            rows = fn()
        except ImportError as e:  # a subpackage that is not built yet must not hide the others
            rows = [("(unavailable)", str(e))]
        from rich.markup import escape

        for row in rows:
            table.add_row(*(escape(str(c)) for c in row))
        console.print(table)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from neurorl.experiment.demo import run_demo

    run_demo(out=args.out, steps=args.steps, seed=args.seed)
    return 0


def _experiment_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment config")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    p.add_argument("--out", default=None, help="run directory (default runs/<name>-<time>)")
    p.add_argument("--wandb", choices=["online", "offline", "disabled"], default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=lambda a: _runner().cmd_run(a))

    p = sub.add_parser("validate", help="validate a config without running it")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    p.set_defaults(func=lambda a: _runner().cmd_validate(a))

    p = sub.add_parser("sweep", help="expand and run a sweep (wandb sweep schema)")
    p.add_argument("sweep")
    p.add_argument("--out", default=None)
    p.add_argument("--wandb", choices=["online", "offline", "disabled"], default=None)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override every member (after its sweep values), e.g. training.steps=4096",
    )
    p.add_argument(
        "--launcher",
        choices=["local", "ray"],
        default="local",
        help="local: groups one after another here; ray: one Ray task per group",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster address (default: RAY_ADDRESS or a new local instance)",
    )
    p.add_argument(
        "--ray-cpus-per-group",
        type=float,
        default=1.0,
        help="CPUs Ray reserves for each group's task",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=lambda a: _runner().cmd_sweep(a))

    p = sub.add_parser("resume", help="resume an interrupted run from its last checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=lambda a: _runner().cmd_resume(a))

    p = sub.add_parser("report", help="plots and a summary table of a run or sweep directory")
    p.add_argument("run_dir")
    p.set_defaults(func=lambda a: _runner().cmd_report(a))


def _data_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="event datasets: list, download (tonic)")
    dsub = p.add_subparsers(dest="data_command")
    q = dsub.add_parser("list", help="the event datasets neurorl loads through tonic")
    q.set_defaults(func=cmd_data_list)
    q = dsub.add_parser("download", help="download a dataset with tonic (needs a network)")
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
        description="Spiking agents, local plasticity, shifting control tasks, neuromorphic chips.",
    )
    parser.add_argument("--version", action="version", version=f"neurorl {__version__}")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("list", help="list registered components")
    p.add_argument(
        "what",
        nargs="?",
        default=None,
        help="neurons, connectivity, rules, envs, encoders, decoders, agents or chips",
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("demo", help="simulate a small spiking network and plot its activity")
    p.add_argument("--out", default="neurorl-demo.png")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    _experiment_commands(sub)
    _data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except NeurorlError as e:
        print(f"neurorl: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
