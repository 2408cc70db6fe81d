"""Generate workbooks like the Queensland public-sector workforce reports for the chute
"workforce" example.

    OUT_DIR/landing/qld-biannual-report-<mar|sept>-<year>-open-data-tables.xlsx

Each workbook has a cover sheet and the sheet "pg 18 and 19 gender", laid out like the real
one: a title row, then four tables (FTE by agency, FTE of other entities, headcount by
agency, headcount of other entities) separated by blank rows, each with a two-row header
(group titles "FTE" / "Headcount" and "Percentage" over Female, Male, Total, Female, Male),
a sub-total row and, after the other entities, a sector total. Percentages are fractions.

Run::

    python generate.py OUT_DIR [--files 4] [--seed 42]

Output is deterministic per seed (openpyxl writes the files).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from openpyxl import Workbook

SHEET = "pg 18 and 19 gender"
AGENCIES = ["Department of Education", "Queensland Health", "Queensland Police Service", "Public Trustee",
            "Department of Transport and Main Roads", "Queensland Treasury", "TAFE Queensland",
            "Queensland Audit Office", "Public Service Commission", "Department of Youth Justice",
            "Queensland Corrective Services", "Department of Environment and Science"]
ENTITIES = ["Legal Aid Queensland", "Office of the Health Ombudsman", "Queensland Art Gallery",
            "Queensland Family and Child Commission", "Queensland Human Rights Commission", "Queensland Museum",
            "Resources Safety and Health Queensland", "State Library of Queensland",
            "Trade and Investment Queensland", "Queensland Performing Arts Trust", "Motor Accident Insurance Commission",
            "Gold Coast Waterways Authority"]


def counts(rng: np.random.Generator, n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    total = np.maximum(2, rng.lognormal(np.log(scale), 1.0, n)).astype(np.int64)
    share = rng.uniform(0.2, 0.85, n)
    female = np.clip(np.round(total * share).astype(np.int64), 1, total - 1)
    return female, total - female


def _table(ws, measure: str, label: str, names: list[str], female: np.ndarray, male: np.ndarray,
           subtotal: str, fte: bool) -> tuple[int, int]:
    ws.append([None, measure, None, None, "Percentage", None])
    ws.append([label, "Female", "Male", "Total", "Female", "Male"])
    scale = 0.93 if fte else 1.0  # FTE are a little under headcount, with two decimals
    f_all = m_all = 0.0
    for name, f, m in zip(names, female.tolist(), male.tolist()):
        f, m = (round(f * scale, 2), round(m * scale, 2)) if fte else (f, m)
        ws.append([name, f, m, round(f + m, 2) if fte else f + m, f / (f + m), m / (f + m)])
        f_all += f
        m_all += m
    ws.append([subtotal, f_all, m_all, f_all + m_all, f_all / (f_all + m_all), m_all / (f_all + m_all)])
    return f_all, m_all


def write_workbook(path: Path, rng: np.random.Generator, entities: int) -> int:
    wb = Workbook()
    cover = wb.active
    cover.title = "pg 5 workforce at a glance"
    cover.append(["Queensland public sector workforce profile (generated)"])
    ws = wb.create_sheet(SHEET)
    agencies = list(rng.permutation(AGENCIES))
    others = sorted(rng.choice(ENTITIES, size=entities, replace=False).tolist())
    a_f, a_m = counts(rng, len(agencies), 3000.0)
    o_f, o_m = counts(rng, len(others), 150.0)
    for measure, title in (("FTE", "Number of FTE and percentage by gender and agency"),
                           ("Headcount", "Headcount and percentage by gender and agency")):
        fte = measure == "FTE"
        ws.append([title])
        af, am = _table(ws, measure, "Agency", agencies, a_f, a_m, "Sector sub-total: Budget paper 2 agencies", fte)
        ws.append([])
        of, om = _table(ws, measure, "Other entities", others, o_f, o_m, "Sector sub-total: Other entities", fte)
        t_f, t_m = af + of, am + om
        ws.append(["Sector total", t_f, t_m, t_f + t_m, t_f / (t_f + t_m), t_m / (t_f + t_m)])
        ws.append([])
        ws.append([])
    wb.save(path)
    return len(others)


def generate(out_dir: Path, files: int = 4, seed: int = 42, top: int | None = None,
             entities: tuple[int, int] = (6, 12)) -> dict:
    """Write `files` half-yearly workbooks (March and September, from 2018 on); `top` is unused."""
    if files < 1:
        raise ValueError("files must be >= 1")
    started = time.perf_counter()
    landing = Path(out_dir) / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = 0
    for k in range(files):
        month, year = ("mar", "sept")[k % 2], 2018 + k // 2
        n = int(rng.integers(entities[0], entities[1], endpoint=True))
        rows += write_workbook(landing / f"qld-biannual-report-{month}-{year}-open-data-tables.xlsx", rng, n)
    return {"files": files, "rows": rows, "landing_dir": str(landing),
            "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="writes landing/ here")
    parser.add_argument("--files", type=int, default=4, help="workbooks (default 4)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        s = generate(args.out_dir, args.files, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{s['files']} workbooks, {s['rows']} other-entity rows, {s['seconds']} s -> {args.out_dir}")


if __name__ == "__main__":
    main()
