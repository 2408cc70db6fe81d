"""`chute deploy aws --ci github|codepipeline`: the rendered CI/CD for the stocks and retail
examples, run through actionlint, the buildspec checks, cfn-lint and checkov (and the stack's
own offline checks), and what the pipelines must hold: per-branch environments, OIDC, no keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from chute.config.project import load_project
from chute.deploy import ci
from chute.deploy.aws.check import find_tool
from chute.examples.scaffold import create_project

ROOT = Path(__file__).resolve().parents[1]


def _checks(report: dict) -> dict[str, dict]:
    return {c["tool"]: c for c in report["checks"]}


def _require_actionlint() -> None:
    if find_tool("actionlint") is None:
        pytest.skip("actionlint is not installed (make iac)")


def test_the_ci_pins_the_checkers_as_make_iac_does():
    pinned = [line.strip() for line in (ROOT / "scripts" / "iac-requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert set(ci.IAC_TOOLS) <= set(pinned)


def test_stocks_github_workflow_and_codepipeline_pass_every_offline_check(stocks, cli):
    """The workflow through actionlint, the pipeline's template through cfn-lint and checkov, its
    buildspecs through their checks, and the stack itself through --check: ~60 s."""
    _require_actionlint()
    subprocess.run(["git", "init", "-q", str(stocks.parent)], check=True)  # the repository holds the project
    result = cli("deploy", "aws", "-p", stocks, "--ci", "github", "--ci", "codepipeline", "--check", "--json",
                 expect=None)
    report = json.loads(result.output)
    checks = _checks(report)
    assert result.exit_code == 0, checks
    for tool in ("actionlint", "buildspecs", "cfn-lint (pipeline)", "checkov (pipeline)", "cfn-lint", "sam validate",
                 "checkov (cloudformation)", "checkov (terraform)", "hcl2 parse"):
        assert checks[tool]["status"] == "passed", checks[tool]
    assert " 0 failed" in checks["checkov (pipeline)"]["summary"]

    workflow_path = stocks.parent / ".github" / "workflows" / "chute-stocks.yml"
    assert str(workflow_path) in report["ci"]
    text = workflow_path.read_text()
    workflow = yaml.safe_load(text)
    assert workflow["env"]["PROJECT_DIR"] == "stocks" and workflow["env"]["INFRA_DIR"] == "stocks/infra"
    assert workflow[True]["push"]["paths"][0] == "stocks/**"  # YAML 1.1 reads the key `on` as True
    jobs = workflow["jobs"]
    validate = " ".join(s.get("run", "") + s.get("name", "") for s in jobs["validate"]["steps"])
    assert "--check" in validate and "terraform validate" in validate and "terraform init -backend=false" in validate
    assert jobs["deploy"]["environment"] == "${{ github.ref == 'refs/heads/main' && 'prod' || 'dev' }}"
    assert jobs["changeset"]["if"] == "github.event_name == 'pull_request'"
    assert "--no-execute-changeset" in jobs["changeset"]["steps"][-1]["run"]
    for job in ("changeset", "deploy"):
        assert jobs[job]["permissions"]["id-token"] == "write"
        credentials = next(s for s in jobs[job]["steps"] if "configure-aws-credentials" in s.get("uses", ""))
        assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert "secrets." not in text and "aws-access-key-id" not in text  # OIDC only, never stored keys

    pipeline = yaml.safe_load((stocks / "infra" / "ci" / "pipeline.yaml").read_text().split("\n", 1)[1])
    stages = pipeline["Resources"]["Pipeline"]["Properties"]["Stages"]
    names = [s["Name"] if "Name" in s else s["Fn::If"][1]["Name"] for s in stages]
    assert names == ["Source", "Validate", "Plan", "Approve", "Apply"]  # Approve only in prod (Fn::If)
    plan = yaml.safe_load((stocks / "infra" / "ci" / "buildspec-plan.yml").read_text())
    assert any("terraform plan" in c for c in plan["phases"]["build"]["commands"])
    validate_spec = (stocks / "infra" / "ci" / "buildspec-validate.yml").read_text()
    assert "--check" in validate_spec and "terraform -chdir" in validate_spec and "validate -no-color" in validate_spec


def test_retail_stages_each_get_a_workflow_that_passes_actionlint_and_the_checks(tmp_path, cli):
    """The retail example's three chained stages, one repository: three workflows, each
    watching its own stage folder; one stage's stack and pipeline through every check."""
    _require_actionlint()
    retail = tmp_path / "retail"
    create_project(retail, "retail")
    subprocess.run(["git", "init", "-q", str(retail)], check=True)
    for stage in ("branches", "salespersons", "sales"):
        check = ["--check"] if stage == "sales" else []
        result = cli("deploy", "aws", "-p", retail / stage, "--ci", "github", "--ci", "codepipeline", *check,
                     "--json", expect=None)
        report = json.loads(result.output)
        assert result.exit_code == 0, report.get("checks")
        workflow = yaml.safe_load((retail / ".github" / "workflows" / f"chute-{stage}.yml").read_text())
        assert workflow["env"]["PROJECT_DIR"] == stage and workflow[True]["push"]["paths"][0] == f"{stage}/**"
        if check:
            assert all(c["status"] == "passed" for c in report["checks"]
                       if c["tool"] != "terraform fmt"), _checks(report)
    done = ci.actionlint(sorted((retail / ".github" / "workflows").glob("*.yml")))
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("branches", "salespersons"):
        project = load_project(retail / stage)
        assert ci.check_ci([str(p) for p in (retail / stage / "infra" / "ci").glob("buildspec-*.yml")])[0].status \
            == "passed", project.name


def test_a_broken_buildspec_is_caught():
    folder = _tiny_project()
    good = ci.buildspecs(load_project(folder), folder / "infra")["buildspec-validate.yml"]
    assert ci.buildspec_problems(good) == []
    broken = good.replace("  build:\n", "  biuld:\n").replace("validate -no-color\n", "validate 'unclosed\n")
    problems = ci.buildspec_problems(broken)
    assert any("unknown phase 'biuld'" in p for p in problems)
    assert any(p.startswith("phase biuld:") for p in problems), problems  # bash -n: the unclosed quote
    assert ci.buildspec_problems("version: 0.1\n") == ["not a version 0.2 buildspec"]


def _tiny_project() -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="chute-ci-"))
    (folder / "chute.toml").write_text('[project]\nname = "tiny"\n[tables.rows.columns]\na = "text"\n')
    return folder


def test_a_deployment_outside_the_repository_is_refused(stocks, tmp_path, cli):
    subprocess.run(["git", "init", "-q", str(stocks)], check=True)
    result = cli("deploy", "aws", "-p", stocks, "--out", tmp_path / "elsewhere", "--ci", "github", expect=2)
    assert "outside the repository" in result.output
