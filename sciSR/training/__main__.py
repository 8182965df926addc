"""``python -m sciSR.training RECIPE [key=value ...] [--resume CKPT]`` (also the torchrun entry point)."""

from __future__ import annotations

import argparse
import sys

from sciSR.errors import SciSRError
from sciSR.training import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sciSR.training", description="Train a super-resolution model.")
    parser.add_argument("config", help="recipe name (see scisr train --list) or YAML file")
    parser.add_argument("overrides", nargs="*", help="key.sub=value settings, e.g. train.max_steps=100")
    parser.add_argument("--resume", help="checkpoint written by an earlier run (last.ckpt)")
    args = parser.parse_args(argv)
    try:
        result = run(args.config, overrides=args.overrides, resume=args.resume)
    except SciSRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"model: {result.model_path}\nlogs: {result.log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
