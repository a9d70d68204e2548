"""`/opt/lib/rush` in the image: the seed's engine's command line, exactly. Five arguments,
`OUTER INNER SPECPATH INGRESS_PROFILE EGRESS_PROFILE`, run the engine as `linkshaper run`
does; any other count (`-h` included, as the seed's setup calls it) prints the seed's usage
on stdout and exits 1."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from engine.cli.main import main as linkshaper
from engine.cli.serve import SEED_USAGE_EXIT, seed_usage

SEED_ARGUMENTS = 5


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != SEED_ARGUMENTS:
        sys.stdout.write(seed_usage("/opt/lib/rush"))
        raise SystemExit(SEED_USAGE_EXIT)
    linkshaper(["run", *args])


if __name__ == "__main__":
    main()
