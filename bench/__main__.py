"""``python -m bench``: run every benchmark script in this folder (each prints its table)."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    only = sys.argv[1:]
    for name in names:
        if only and name not in only:
            continue
        mod = importlib.import_module(f"bench.{name}")
        if hasattr(mod, "main"):
            print(f"\n=== bench/{name}.py")
            mod.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
