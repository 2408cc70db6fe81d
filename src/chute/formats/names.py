"""Column names a table can take: normalised to ASCII snake_case, and checked against
PostgreSQL's limits before anything is written.

snake_case follows dlt's naming convention (dlt.common.normalizers.naming.snake_case): camelCase
split, `+ * @ |` spelled `x x a l`, anything else not a letter or digit becomes `_`, runs of `_`
collapse. Own choices: accents are transliterated (`Année` -> `annee`, `Größe` -> `groesse`
style: `ß` -> `ss`), `%` -> `pct`, `#` -> `num`, `&` -> `and`, no trailing `_`, a leading digit
gets `c_`, a name with no letter or digit becomes `col_N` (N: its position).

Limits (check_names), refused with what to do: more than 1,600 columns (PostgreSQL's table
limit), a name over 63 bytes (PostgreSQL would cut it silently, and two cut names can collide),
two columns with one name.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

MAX_COLUMNS = 1600
MAX_NAME = 63  # bytes: NAMEDATALEN - 1

_CAMEL_1 = re.compile(r"([^_\s])([A-Z][a-z]+)")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """'Culmen Length (mm)' -> 'culmen_length_mm', 'dateRep' -> 'date_rep', 'Année' -> 'annee',
    '% change' -> 'pct_change', '2nd' -> 'c_2nd'; '' when nothing of it is left."""
    s = name.strip().replace("ß", "ss").replace("%", " pct ").replace("#", " num ").replace("&", " and ")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    s = s.translate(str.maketrans("+*@|", "xxal"))
    s = _CAMEL_1.sub(r"\1_\2", s)
    s = _CAMEL_2.sub(r"\1_\2", s).lower()
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    if s and s[0].isdigit():
        s = "c_" + s
    return s


def normalize_names(names: list[str]) -> list[str]:
    """Each name in snake_case (an empty result: col_N, N its 1-based position). Duplicates and
    lengths are left for check_names to refuse: a silent `_2` or a cut name would make a table
    whose columns no one chose."""
    return [snake_case(n) or f"col_{i}" for i, n in enumerate(names, 1)]


def check_names(names: list[str], originals: list[str] | None = None, keep: bool = False) -> str | None:
    """What makes `names` (the table's, in order) impossible, with what to do; None if nothing.
    `originals`: the file's names, when normalised from them."""
    originals = originals or names
    how = "with --names keep" if not keep else "with --names normalize"
    if len(names) > MAX_COLUMNS:
        return (f"the file has {len(names):,} columns and a PostgreSQL table holds at most {MAX_COLUMNS:,}; "
                f"keep the ones you need with --columns NAME,NAME,... (or, in a project, [source] select), or "
                f"split the file")
    long = [(o, n) for o, n in zip(originals, names) if len(n.encode()) > MAX_NAME]
    if long:
        o, n = long[0]
        more = f" (and {len(long) - 1} more)" if len(long) > 1 else ""
        return (f"column {o[:80]!r}{more} is named {len(n.encode())} bytes long"
                + (f" as {n[:80]!r}" if n != o else "")
                + f"; PostgreSQL names hold {MAX_NAME} bytes and would be cut silently (two cut names can "
                "collide): rename it in the file, or leave it out with --columns")
    counts = Counter(names)
    dup = [n for n, c in counts.items() if c > 1]
    if dup:
        which = [o for o, n in zip(originals, names) if n == dup[0]]
        shown = " and ".join(repr(o) for o in which)
        if names == originals:
            return f"the file names two columns {dup[0]!r}; rename one of them in the file"
        fix = f", or load {how}" if len(set(which)) == len(which) else ""
        return f"columns {shown} would both be named {dup[0]!r}; rename one of them in the file{fix}"
    return None
