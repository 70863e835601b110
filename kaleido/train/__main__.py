"""`python -m kaleido_bench.kaleido.train CONFIG.yaml`, also the `accelerate launch -m` entry.

    accelerate launch --config_file kaleido/train/configs/accelerate_fsdp2.yaml \
        -m kaleido_bench.kaleido.train kaleido/train/configs/kaleido_14b.yaml
"""

from __future__ import annotations

import logging
import sys

from kaleido_bench.kaleido.train.config import TrainConfigError
from kaleido_bench.kaleido.train.trainer import run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        result = run(argv[0])
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.records:
        print(
            f"trained to step {result.records[-1].step}, last loss {result.records[-1].loss:.6f}; {result.output_dir}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
