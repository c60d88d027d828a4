"""The CPU peak-memory worker, run in a fresh process by
:func:`pe_dense.benchmark.memory.measure_memory`:

    python -m pe_dense.benchmark.worker CASE_JSON IMPL

prints the peak memory in MiB of one iteration of the case (``IMPL``: pe_dense or timm).
"""

from __future__ import annotations

import json
import sys

from pe_dense.benchmark.core import Case
from pe_dense.benchmark.memory import peak_memory


def main(argv: list[str] | None = None) -> int:
    """``argv``: [CASE_JSON, IMPL]; prints the peak in MiB."""
    case_json, impl = argv if argv is not None else sys.argv[1:]
    print(peak_memory(Case(**json.loads(case_json)), impl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
