"""Generate workbooks like the Queensland public-sector workforce reports into landing/ (the
workforce example's generator: see its generate.py).

Run::

    python generate.py OUT_DIR [--files 4] [--seed 42]
"""

from __future__ import annotations

from chute.examples.workforce.generate import generate, main  # noqa: F401  (scaffold calls generate)

if __name__ == "__main__":
    main()
