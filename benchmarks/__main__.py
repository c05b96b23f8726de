"""`python -m benchmarks NAME [args]` runs `benchmarks.NAME.main(args)`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from benchmarks import available


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to one benchmark module; lists the known ones when called without a name."""
    args = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m benchmarks NAME [options]\n\nbenchmarks: " + ", ".join(names))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
