"""Generate synthetic data for the chute "stocks" example.

Imitates the layout of the Kaggle "Huge Stock Market Dataset":

* ``OUT_DIR/landing/<ticker>.us.txt`` - one CSV per ticker with header
  ``Date,Open,High,Low,Close,Volume,OpenInt``, ascending business days up to
  2017-11-10, prices rounded to 3 decimals, integer volume, OpenInt always 0.
* ``OUT_DIR/reference/top_companies.txt`` - one line of quoted,
  comma-separated file names such as ``'aav.us.csv', 'brk-b.us.csv'``.
  It says ``.us.csv`` although the files are ``.us.txt``, and the last
  separator has no space, exactly as the real file does.

About 1 file in 500 (at least one) gets a row with Open = 0.0, like a real
file, so that downstream code meets a division by zero.

Run::

    python generate.py OUT_DIR [--files 300] [--top N] [--seed 42] \
        [--min-rows A] [--max-rows B]

``--files 7192`` gives the full size of the real dataset: about 15 M rows,
1,000 top companies holding about 2 M rows. Output is deterministic per seed.
Existing files of the same name are overwritten; nothing else is removed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

FULL_FILES = 7192  # tickers in the real dataset
FULL_TOP = 1000  # names in the real top_companies.txt
LAST_DAY = np.datetime64("2017-11-10")  # last date in the real files
# Defaults give mean rows ~2,090 (real dataset: ~15 M rows / 7,192 files):
# the longest history starts in January 2005, the shortest in mid-2014.
DEFAULT_MAX_ROWS = int(np.busday_count(np.datetime64("2005-01-03"), LAST_DAY)) + 1
DEFAULT_MIN_ROWS = 2 * 2090 - DEFAULT_MAX_ROWS
HEADER = ["Date", "Open", "High", "Low", "Close", "Volume", "OpenInt"]
LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))
# Share of base-ticker lengths, roughly as in the real ticker list.
BASE_LENGTHS = np.array([1, 2, 3, 4, 5])
BASE_LENGTH_P = np.array([0.005, 0.04, 0.35, 0.5, 0.105])
# Suffix forms seen in real tickers: abr_c, bio-b, mtb-ws, gs_i-cl, tdw-ws-b, mtl_.
SUFFIXES = ["_{}", "-{}", "-ws", "-cl", "_{}-cl", "-ws-{}", "_"]
SUFFIX_P = np.array([0.6, 0.2, 0.07, 0.04, 0.04, 0.03, 0.02])
SUFFIX_SHARE = 0.08  # ~8% of real tickers carry a suffix
ZERO_OPEN_EVERY = 500  # one file in this many gets an Open = 0.0 row
LOG_LO, LOG_HI = np.log(0.2), np.log(3000.0)  # keep walks in a sane price band


def default_top(files: int) -> int:
    """Top-company count scaled from the real 1,000 of 7,192."""
    return max(1, round(files * FULL_TOP / FULL_FILES))


def make_tickers(rng: np.random.Generator, n: int) -> list[str]:
    """Unique lowercase tickers, sometimes with ``_``/``-`` parts."""
    seen: dict[str, None] = {}  # dict keeps insertion order -> deterministic
    while len(seen) < n:
        length = rng.choice(BASE_LENGTHS, p=BASE_LENGTH_P)
        ticker = "".join(rng.choice(LETTERS, size=length))
        if rng.random() < SUFFIX_SHARE:
            form = SUFFIXES[rng.choice(len(SUFFIXES), p=SUFFIX_P)]
            ticker += form.format(rng.choice(LETTERS))
        seen.setdefault(ticker)
    return list(seen)


def reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold a path into [lo, hi] by mirroring at the edges (keeps it continuous)."""
    width = hi - lo
    t = np.mod(x - lo, 2 * width)
    return lo + np.where(t <= width, t, 2 * width - t)


def make_prices(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One ticker's OHLCV: a geometric random walk with Low <= Open,Close <= High."""
    sigma = rng.uniform(0.008, 0.035)  # daily volatility differs per ticker
    drift = rng.normal(0.0002, 0.0005)
    start = rng.normal(np.log(30.0), 1.2)
    # Closing log-price walk, then an overnight gap gives the open.
    log_close = reflect(start + np.cumsum(rng.normal(drift, sigma, n)), LOG_LO, LOG_HI)
    log_open = np.empty(n)
    log_open[0] = log_close[0] + rng.normal(0.0, sigma * 0.3)
    log_open[1:] = log_close[:-1] + rng.normal(0.0, sigma * 0.3, n - 1)
    close = np.exp(log_close)
    open_ = np.exp(log_open)
    # Intraday range stretches beyond both open and close.
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, sigma * 0.5, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, sigma * 0.5, n)))
    # Rounding is monotone, so the ordering survives it.
    base_volume = np.exp(rng.normal(np.log(2e5), 1.5))
    volume = np.maximum(1, base_volume * rng.lognormal(0.0, 0.5, n)).astype(np.int64)
    return {
        "Open": np.round(open_, 3),
        "High": np.round(high, 3),
        "Low": np.round(low, 3),
        "Close": np.round(close, 3),
        "Volume": volume,
    }


def format_top(names: list[str]) -> str:
    """Format like the real file, including the missing space before the last name."""
    quoted = [f"'{name}.us.csv'" for name in names]
    if len(quoted) < 2:
        return "".join(quoted) + "\n"
    return ", ".join(quoted[:-1]) + "," + quoted[-1] + "\n"


def generate(
    out_dir: Path,
    files: int = 300,
    top: int | None = None,
    seed: int = 42,
    min_rows: int = DEFAULT_MIN_ROWS,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> dict:
    """Write ``files`` stock files and the top-companies list; return a summary."""
    if files < 1:
        raise ValueError("files must be >= 1")
    if not 1 <= min_rows <= max_rows:
        raise ValueError("need 1 <= min_rows <= max_rows")
    top = default_top(files) if top is None else top
    if not 1 <= top <= files:
        raise ValueError("top must be between 1 and files")

    started = time.perf_counter()
    out_dir = Path(out_dir)
    landing = out_dir / "landing"
    reference = out_dir / "reference"
    landing.mkdir(parents=True, exist_ok=True)
    reference.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    # One calendar of weekdays ending on LAST_DAY; each file takes its tail,
    # so the date strings are formatted once and sliced without copying.
    days = np.busday_offset(LAST_DAY, np.arange(-(max_rows - 1), 1), roll="backward")
    dates = pl.Series("Date", np.datetime_as_string(days, unit="D"))
    zeros = pl.Series("OpenInt", np.zeros(max_rows, dtype=np.int64))

    tickers = make_tickers(rng, files)
    rows = rng.integers(min_rows, max_rows, endpoint=True, size=files)
    n_zero = max(1, round(files / ZERO_OPEN_EVERY))
    zero_open = set(rng.choice(files, size=n_zero, replace=False).tolist())

    for i, (ticker, n) in enumerate(zip(tickers, rows.tolist())):
        cols = make_prices(rng, n)
        if i in zero_open:
            # Mirror the real bad row "2008-02-07,0.0,12.138,0.0,12.138,0,0":
            # Open and Low zero (so Low <= Open still holds), no volume.
            j = int(rng.integers(n))
            cols["Open"][j] = 0.0
            cols["Low"][j] = 0.0
            cols["Volume"][j] = 0
        frame = pl.DataFrame(
            [
                dates.slice(max_rows - n, n),
                *(pl.Series(name, cols[name]) for name in HEADER[1:6]),
                zeros.slice(0, n),
            ]
        )
        frame.write_csv(landing / f"{ticker}.us.txt")

    # Random subset of existing tickers, in random order.
    top_idx = rng.choice(files, size=top, replace=False)
    top_path = reference / "top_companies.txt"
    top_path.write_text(format_top([tickers[k] for k in top_idx]))

    return {
        "files": files,
        "rows": int(rows.sum()),
        "top_files": top,
        "top_rows": int(rows[top_idx].sum()),
        "zero_open_files": [f"{tickers[k]}.us.txt" for k in sorted(zero_open)],
        "landing_dir": str(landing),
        "top_companies": str(top_path),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="writes landing/ and reference/ here")
    parser.add_argument(
        "--files", type=int, default=300, help="stock files (default 300; 7192 = full size)"
    )
    parser.add_argument(
        "--top", type=int, default=None, help="top companies (default files*1000/7192)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--min-rows", type=int, default=DEFAULT_MIN_ROWS)
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    args = parser.parse_args(argv)
    try:
        s = generate(args.out_dir, args.files, args.top, args.seed, args.min_rows, args.max_rows)
    except ValueError as exc:
        parser.error(str(exc))  # bad argument combination: usage message, exit 2
    print(
        f"{s['files']} files, {s['rows']:,} rows, {s['top_files']} top files, "
        f"{s['top_rows']:,} top rows, {s['seconds']} s -> {args.out_dir}"
    )


if __name__ == "__main__":
    main()
