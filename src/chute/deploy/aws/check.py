"""`chute deploy aws --check`: the rendered deployment through the tools AWS users trust,
all offline:

    cfn-lint        the SAM template, and the child templates of --nested (pinned in scripts/iac-requirements.txt)
    sam validate    the SAM template (SAM's own transform)
    terraform fmt   -check on the Terraform (python-hcl2 parses it when terraform is absent)
    checkov         the template and the Terraform; accepted findings are skipped in the
                    template itself, each with its reason

The tools live in their own virtualenv (.venv-iac, `make iac`) so their dependency trees
never meet chute's; $CHUTE_IAC_VENV, a .venv-iac beside the project or the chute checkout,
and then $PATH are searched, in that order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class CheckResult:
    tool: str
    status: str  # passed | failed | unavailable
    summary: str
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _venv_bins() -> list[Path]:
    places = []
    if os.environ.get("CHUTE_IAC_VENV"):
        places.append(Path(os.environ["CHUTE_IAC_VENV"]) / "bin")
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in [start, *start.parents]:
            places.append(folder / ".venv-iac" / "bin")
    return places


def find_tool(name: str) -> str | None:
    for folder in _venv_bins():
        if (folder / name).is_file() and os.access(folder / name, os.X_OK):
            return str(folder / name)
    return shutil.which(name)


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
           "BC_SKIP_MAPPING": "TRUE", "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    env.pop("AWS_ENDPOINT_URL", None)
    if not Path(env.get("TF_CLI_CONFIG_FILE", "/")).is_file():
        env.pop("TF_CLI_CONFIG_FILE", None)  # a missing CLI config only makes terraform print a warning
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _unavailable(tool: str, install: str) -> CheckResult:
    return CheckResult(tool, "unavailable", f"{tool} not found ({install})")


def templates(out: Path) -> list[str]:
    """template.yaml, and the child templates of a nested render (stack-*.yaml)."""
    return ["template.yaml", *sorted(p.name for p in out.glob("stack-*.yaml"))]


def cfn_lint(out: Path) -> CheckResult:
    exe = find_tool("cfn-lint")
    if not exe:
        return _unavailable("cfn-lint", "run `make iac`, or pip install cfn-lint")
    done = _run([exe, "--format", "parseable", *templates(out)], out)
    findings = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode == 0:
        return CheckResult("cfn-lint", "passed", "no errors, no warnings")
    return CheckResult("cfn-lint", "failed", f"{len(findings)} finding(s)", findings or [done.stderr.strip()])


def sam_validate(out: Path) -> CheckResult:
    exe = find_tool("sam")
    if not exe:
        return _unavailable("sam validate", "run `make iac`, or pip install aws-sam-cli")
    for name in templates(out):
        done = _run([exe, "validate", "--template-file", name, "--region", "us-east-1", "--lint"], out)
        text = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            return CheckResult("sam validate", "failed", f"{name} invalid", text.splitlines()[-40:])
    return CheckResult("sam validate", "passed", "valid SAM template (with --lint)")


def terraform_fmt(out: Path) -> list[CheckResult]:
    folder = out / "terraform"
    exe = find_tool("terraform")
    results = []
    if exe:
        done = _run([exe, "fmt", "-check", "-recursive", "-diff", "-no-color", str(folder)], out)
        if done.returncode == 0:
            results.append(CheckResult("terraform fmt", "passed", "formatted (terraform fmt -check)"))
        else:
            results.append(CheckResult("terraform fmt", "failed", "not in terraform's canonical format",
                                       (done.stdout + done.stderr).splitlines()[:60]))
    else:
        results.append(CheckResult("terraform fmt", "unavailable",
                                   "terraform is not installed (no package ships it here); parsed with python-hcl2 "
                                   "instead, which checks the syntax but not the layout"))
    results.append(hcl_parse(folder))
    return results


def hcl_parse(folder: Path) -> CheckResult:
    """Every .tf file parses as HCL2 (python-hcl2, in the IaC virtualenv)."""
    python = find_tool("python")
    venv_python = next((str(b / "python") for b in _venv_bins() if (b / "python").is_file()
                        and (b / "checkov").is_file()), None)
    python = venv_python or python
    script = ("import sys, hcl2, pathlib\n"
              "bad = []\n"
              "for p in sorted(pathlib.Path(sys.argv[1]).rglob('*.tf')):\n"
              "    try:\n        hcl2.loads(p.read_text())\n"
              "    except Exception as e:\n        bad.append(f'{p}: {e}')\n"
              "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    done = _run([python or "python3", "-c", script, str(folder)], folder.parent)
    if "No module named 'hcl2'" in done.stderr:
        return _unavailable("hcl2 parse", "run `make iac`, or pip install python-hcl2")
    if done.returncode == 0:
        return CheckResult("hcl2 parse", "passed", "every .tf file parses (python-hcl2)")
    return CheckResult("hcl2 parse", "failed", "HCL syntax errors", (done.stdout + done.stderr).splitlines()[:40])


def checkov(out: Path, framework: str, target: list[str]) -> CheckResult:
    exe = find_tool("checkov")
    tool = f"checkov ({framework})"
    if not exe:
        return _unavailable(tool, "run `make iac`, or pip install checkov")
    done = _run([exe, *target, "--framework", framework, "--output", "json", "--compact", "--skip-download"], out)
    try:
        reports = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return CheckResult(tool, "failed", "checkov did not run", (done.stdout + done.stderr).splitlines()[-20:])
    if isinstance(reports, dict):
        reports = [reports]
    failed, passed, skipped, unparsed = [], 0, [], 0
    for report in reports:
        results = report.get("results", {})
        passed += report.get("summary", {}).get("passed", 0)
        unparsed += report.get("summary", {}).get("parsing_errors", 0)
        for c in results.get("failed_checks", []):
            failed.append(f"{c['check_id']} {c['resource']}: {c['check_name']}")
        for c in results.get("skipped_checks", []):
            why = c.get("check_result", {}).get("suppress_comment") or c.get("suppress_comment") or ""
            skipped.append(f"skipped {c['check_id']} {c['resource']}: {why}")
    summary = f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped with a reason"
    if unparsed:
        failed.append(f"{unparsed} file(s) checkov could not parse")
    if not passed and not failed:
        return CheckResult(tool, "failed", "checkov checked nothing", (done.stdout + done.stderr).splitlines()[-20:])
    return CheckResult(tool, "failed" if failed else "passed", summary, failed + skipped)


def run_checks(out: Path) -> list[CheckResult]:
    out = out.resolve()
    return [
        cfn_lint(out),
        sam_validate(out),
        *terraform_fmt(out),
        checkov(out, "cloudformation", [arg for name in templates(out) for arg in ("--file", name)]),
        checkov(out, "terraform", ["--directory", "terraform"]),
    ]
