"""Run the benchmark suite and write docs/PERFORMANCE.md; the same as `captioner benchmark`.

    python scripts/benchmark.py                      # everything (~10 min on 2 CPU cores), writes docs/PERFORMANCE.md
    python scripts/benchmark.py --only beam-search   # one row, printed only
    python scripts/benchmark.py --quick              # smoke run with tiny sizes
"""

import sys

from captioner.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
