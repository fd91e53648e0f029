"""Command line: ``python -m tensortrain demo`` and ``python -m tensortrain train-mnist``."""

from __future__ import annotations

import argparse
import math
import sys

# only the light modules here: the heavy ones (training, the demo) are imported by the command
# that needs them, so that `--help` and argument errors answer at once
from .errors import TTError


def _modes(text):
    try:
        modes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 4,8,8,4, got {text!r}") from None
    if not modes or any(m < 1 for m in modes):
        raise argparse.ArgumentTypeError(f"modes must be positive integers, got {text!r}")
    return modes


def _number(convert, accept, expected):
    """An argparse ``type``: ``convert(text)``, refused unless ``accept(value)``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: 0 < v < math.inf, "a finite positive number")


def _add_train_mnist(sub):
    p = sub.add_parser(
        "train-mnist",
        help="train 1024 -TT-> 1024 -ReLU-> 10 on MNIST (images padded to 32x32), or the "
             "dense / low-rank baselines, and report accuracy, compression and timing",
        description="Train the MNIST network of Novikov et al. (2015). Without --data it uses "
                    "the 8,000 digits embedded in the package.")
    p.add_argument("--modes", type=_modes, default=(4, 8, 8, 4),
                   help="TT modes of the 1024 inputs and outputs, product 1024 (default 4,8,8,4)")
    p.add_argument("--rank", type=_positive_int, default=8, help="TT-rank (default 8)")
    p.add_argument("--epochs", type=_nonnegative_int, default=20, help="epochs (default 20)")
    p.add_argument("--device", choices=["numpy", "cupy"], default="numpy",
                   help="array backend (default numpy)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="DIR", default=None,
                     help="directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte"
                          "[.gz] and optionally the t10k-* test files")
    src.add_argument("--download", action="store_true",
                     help="download the full MNIST into ~/.cache/tensortrain/mnist (needs a "
                          "network)")
    p.add_argument("--save", metavar="PATH", default=None,
                   help="write the trained model to PATH (.npz; load it with "
                        "tensortrain.nn.load_model). PATH is checked before training; if "
                        "writing still fails afterwards, the model goes to a new file in the "
                        "temporary directory, named on stderr, and the exit status is 1")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="draw loss and accuracy curves into PATH (needs matplotlib; the "
                        "format follows the extension, .png when there is none)")
    first = p.add_mutually_exclusive_group()
    first.add_argument("--dense", action="store_true",
                       help="a dense Linear(1024, 1024) first layer instead of the TT layer")
    first.add_argument("--matrix-rank", type=_positive_int, metavar="R", default=None,
                       help="a low-rank first layer Linear(1024, R) -> Linear(R, 1024) (the "
                            "'MR' baseline of the paper)")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=_positive_int, default=100,
                   help="mini-batch size (default 100)")
    p.add_argument("--val", type=_nonnegative_int, default=1000,
                   help="training digits held out for validation (default 1000)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="adam",
                   help="optimizer (default adam)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--limit", type=_positive_int, default=None, help=argparse.SUPPRESS)
    return p


def _run_train_mnist(parser, args):
    from .datasets import MNISTDownloadError  # noqa: PLC0415
    from .nn.mnist_example import HIDDEN, train_mnist  # noqa: PLC0415

    kind = "dense" if args.dense else ("mr" if args.matrix_rank is not None else "tt")
    if kind == "tt" and math.prod(args.modes) != HIDDEN:
        parser.error(f"--modes {','.join(map(str, args.modes))} multiply to "
                     f"{math.prod(args.modes)}; they must multiply to {HIDDEN} (32x32 inputs)")
    if kind == "mr" and args.matrix_rank > HIDDEN:
        parser.error(f"--matrix-rank must be at most {HIDDEN}")
    try:
        result = train_mnist(kind=kind, modes=args.modes, rank=args.rank,
                             matrix_rank=args.matrix_rank, epochs=args.epochs,
                             device=args.device, data=args.data, download=args.download,
                             save=args.save, lr=args.lr, batch_size=args.batch_size,
                             val=args.val, seed=args.seed, optimizer=args.optimizer,
                             progress=not args.no_progress, limit=args.limit, plot=args.plot)
    except (MNISTDownloadError, OSError, FloatingPointError, TTError, ImportError, ValueError,
            MemoryError) as exc:
        print(f"train-mnist: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    # the model is safe in the fallback file (named on stderr), but PATH was not written
    return 1 if "save_error" in result else 0


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _add_demo(sub):
    p = sub.add_parser("demo", help="compress a built-in matrix, print ranks, "
                                    "compression, error and matvec timings against dense")
    p.add_argument("--size", type=int, default=4096,
                   help="matrix size n (n x n; default 4096). A size whose estimated peak "
                        "memory exceeds the available memory is refused before anything is "
                        "allocated, with the largest --size that fits")
    p.add_argument("--eps", type=float, default=1e-6, help="relative accuracy of TT-SVD")
    p.add_argument("--max-rank", type=int, default=None, help="cap on every TT-rank")
    p.add_argument("--batch", type=int, default=64, help="batch of the matrix product")
    return p


def _run_demo(parser, args):
    from .demo import run  # noqa: PLC0415

    if args.size < 1 or args.batch < 1:
        parser.error("--size and --batch must be >= 1")
    if not (args.eps >= 0 and math.isfinite(args.eps)):
        parser.error(f"--eps must be a finite number >= 0, got {args.eps}")
    if args.max_rank is not None and args.max_rank < 1:
        parser.error(f"--max-rank must be >= 1, got {args.max_rank}")
    try:
        run(n=args.size, eps=args.eps, max_rank=args.max_rank, batch=args.batch)
    except MemoryError as exc:
        print(f"demo: error: {_one_line(exc) if str(exc) else 'out of memory'}",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tensortrain",
                                     description="tensortrain command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = _add_demo(sub)
    train = _add_train_mnist(sub)
    args = parser.parse_args(argv)
    if args.command == "train-mnist":
        return _run_train_mnist(train, args)
    if args.command == "demo":
        return _run_demo(demo, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
