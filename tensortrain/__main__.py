"""Command line: ``python -m tensortrain demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tensortrain",
                                     description="tensortrain command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compress a built-in matrix, print ranks, "
                                       "compression, error and matvec timings against dense")
    demo.add_argument("--size", type=int, default=4096, help="matrix size n (n x n)")
    demo.add_argument("--eps", type=float, default=1e-6, help="relative accuracy of TT-SVD")
    demo.add_argument("--max-rank", type=int, default=None, help="cap on every TT-rank")
    demo.add_argument("--batch", type=int, default=64, help="batch of the matrix product")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run  # noqa: PLC0415

        if args.size < 1 or args.batch < 1:
            parser.error("--size and --batch must be >= 1")
        run(n=args.size, eps=args.eps, max_rank=args.max_rank, batch=args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
