"""The ``neuralrg`` command line: argument parsing and wiring only, no science."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import matplotlib
import torch

from neuralrg import distributed
from neuralrg.cli.commands import (
    add_analysis_parsers,
    add_mnist_parser,
    add_sample_parser,
    run_analyze,
    run_exact,
    run_mnist,
    run_report,
    run_sample,
)
from neuralrg.cli.common import OneLineParser, temperature
from neuralrg.cli.scan import add_scan_parser, run_scan
from neuralrg.cli.train import add_train_parser, config_from_flags, run_train

__all__ = ["OneLineParser", "build_parser", "config_from_flags", "console", "main", "temperature"]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="neuralrg", description="Neural Network Renormalization Group")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for PyTorch (default: PyTorch's choice)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_train_parser(commands)
    add_sample_parser(commands)
    add_analysis_parsers(commands)
    add_mnist_parser(commands)
    add_scan_parser(commands)
    exact = commands.add_parser("exact", help="exact Ising results on a finite periodic lattice")
    exact.add_argument("--L", type=int, required=True, help="linear lattice size")
    exact.add_argument("--T", type=temperature, required=True, help="temperature, or 'Tc'")
    exact.add_argument("--d", type=int, default=2, help="lattice dimension, 1 or 2 (default: 2)")
    exact.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


COMMANDS = {"train": run_train, "exact": run_exact, "sample": run_sample,
            "analyze": run_analyze, "report": run_report, "mnist": run_mnist, "scan": run_scan}


def main(argv: Sequence[str] | None = None) -> int:
    matplotlib.use("Agg")  # the command line writes figures to files and never shows them
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"argument --threads: threads={args.threads} must be >= 1")
        torch.set_num_threads(args.threads)
    try:
        return COMMANDS[args.command](args)
    except ValueError as error:
        print(f"neuralrg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file system problem met during the work: one line too
        print(f"neuralrg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130


def console() -> NoReturn:
    """The ``neuralrg`` command and ``python -m neuralrg``: exit with :func:`main`'s status; a
    torchrun rank leaves through :func:`neuralrg.distributed.exit_rank` (see there why)."""
    code = main()
    if distributed.launched_by_torchrun():
        distributed.exit_rank(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
