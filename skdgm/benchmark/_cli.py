"""The command line: ``python -m skdgm.benchmark`` and ``skdgm-benchmark``."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from ._configs import CONFIGS, DEFAULT_ENCODER
from ._methods import METHODS
from ._reports import format_table, format_timings, write_results
from ._runner import BenchmarkRunError, run_benchmark


def _parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_sizes(text: str) -> list:
    sizes = []
    for item in _parse_list(text):
        if item == "all":
            sizes.append("all")
        elif item.isdigit() and int(item) > 0:
            sizes.append(int(item))
        else:
            raise argparse.ArgumentTypeError(
                f"sizes are positive integers or 'all', comma-separated; got {item!r}."
            )
    return sizes


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    if text.strip().lower() == "none":
        return []
    pairs = []
    for item in _parse_list(text):
        source, dash, target = item.partition("-")
        if not dash or not source or not target:
            raise argparse.ArgumentTypeError(
                f"cross-lingual pairs are written source-target, e.g. en-de; got {item!r}."
            )
        pairs.append((source, target))
    return pairs


def _classes(text: str) -> str:
    choices = {"4": "mldoc", "mldoc": "mldoc", "8": "all", "all": "all"}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"--classes takes 4 or 8; got {text!r}.")
    return choices[text]


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}.")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m skdgm.benchmark",
        description="Compare the SDGM with supervised and semi-supervised baselines on the "
        "same draws of labelled documents (the protocol of Zhu et al., EACL 2021).",
    )
    parser.add_argument(
        "--config",
        choices=list(CONFIGS),
        default="demo",
        help="named settings (default: demo); the options below override them",
    )
    parser.add_argument("--languages", type=_parse_list, help="comma-separated, e.g. en,de")
    parser.add_argument("--sizes", type=_parse_sizes, help="labelled sizes, e.g. 16,64,all")
    parser.add_argument("--seeds", type=_positive_int, help="number of seeds (0, 1, ...)")
    parser.add_argument(
        "--methods", type=_parse_list, help=f"comma-separated among {', '.join(METHODS)}"
    )
    parser.add_argument(
        "--cross-lingual",
        type=_parse_pairs,
        help="source-target pairs, e.g. en-de,en-fr; 'none' turns them off",
    )
    parser.add_argument(
        "--encoder",
        default=DEFAULT_ENCODER,
        help=f"model name or folder (default {DEFAULT_ENCODER})",
    )
    parser.add_argument(
        "--prefix",
        default="auto",
        help='text put before every document, e.g. "query: " (default: the encoder\'s '
        'own choice, "passage: " for e5 models)',
    )
    parser.add_argument("--mldoc", metavar="PATH", help="folder of MLDoc files to use instead")
    parser.add_argument(
        "--split",
        choices=["test", "dev"],
        default="test",
        help="the split every method is scored on (default: test; dev is for tuning)",
    )
    parser.add_argument(
        "--classes",
        type=_classes,
        default="mldoc",
        help="the bundled corpus's classes: 4 (default, the 4 most like MLDoc's) or 8 (all)",
    )
    parser.add_argument("--output", default="benchmark_results", help="folder of the results")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="on-disk embedding cache: later runs skip encoding"
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        help="torch CPU threads (default: torch's); 1 helps on a busy machine",
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        help="processes for the methods that need no model of their own (the frozen SDGM, "
        "the regressions); default: the configuration's (2 for the demo), else 1",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw accuracy.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success. Invalid arguments exit with status 2 and a message.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    config = dict(CONFIGS[args.config])
    if args.sizes is not None:  # the sizes of this run, cross-lingual ones included
        config["sizes"], config["cross_lingual_sizes"] = args.sizes, None
    for option in ("languages", "seeds", "cross_lingual"):
        if getattr(args, option) is not None:
            config[option] = getattr(args, option)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)  # the command owns its process
    threads = torch.get_num_threads()
    try:
        results = run_benchmark(
            config["languages"],
            config["sizes"],
            config["seeds"],
            args.methods if args.methods is not None else config.get("methods"),
            cross_lingual=config["cross_lingual"],
            cross_lingual_sizes=config["cross_lingual_sizes"],
            encoder=args.encoder,
            encoder_prefix=args.prefix,
            mldoc=args.mldoc,
            device=args.device,
            cache_dir=args.cache_dir,
            sdgm_params=config["sdgm_params"],
            method_limits=config.get("method_limits"),
            n_jobs=args.jobs if args.jobs is not None else config.get("n_jobs", 1),
            split=args.split,
            classes=args.classes,
            verbose=0 if args.quiet else 1,
        )
    except BenchmarkRunError as exc:  # a method failed: not a usage error
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    results.settings["config"] = args.config
    results.settings["threads"] = threads
    print()
    print(format_table(results, "accuracy"))
    print()
    print(format_table(results, "macro_f1"))
    print()
    print(format_table(results, "log_loss"))
    print()
    print(format_table(results, "ece"))
    print()
    print(format_timings(results))
    paths = write_results(results, args.output, plot=not args.no_plot)
    print("\nWrote " + ", ".join(str(path) for path in paths))
    if config.get("epilogue") and args.methods is None:
        print("\n" + textwrap.fill(config["epilogue"], 88))
    return 0


if __name__ == "__main__":
    sys.exit(main())
