"""`chute deploy aws`: render the project's AWS deployment, and check it offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

# Not imported from cli.py: cli.py imports this module at its end, also when run as __main__.
from chute.cli._common import EXIT_FAILED
from chute.cli.console import err, out


@click.group()
def deploy() -> None:
    """Render what is needed to run the project's pipeline on a cloud (see docs/deploy-aws.md)."""


@deploy.command("aws")
@click.option("--project", "-p", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="The project folder (holding chute.toml).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the deployment. Default: PROJECT/infra.")
@click.option("--check", is_flag=True,
              help="Then validate it offline: cfn-lint and sam validate on the template, terraform fmt -check "
                   "and checkov on the template and the Terraform. Exit 1 on any finding.")
@click.option("--ci", "ci_kinds", type=click.Choice(["github", "codepipeline"]), multiple=True,
              help="Also render the CI/CD that validates, plans and deploys the stack per environment: github "
                   "(.github/workflows/chute-PROJECT.yml) or codepipeline (OUT/ci/). With --check, checked too "
                   "(actionlint; cfn-lint, checkov and the buildspecs). See docs/deploy-aws.md.")
@click.option("--nested", is_flag=True,
              help="Render template.yaml as a root stack whose resources sit in child templates (stack-*.yaml: "
                   "storage, iam, functions, alarms) instead of one flat template. See docs/deploy-aws.md.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of text.")
def aws(project_dir: Path, out_dir: Path | None, check: bool, ci_kinds: tuple[str, ...], nested: bool,
        as_json: bool) -> None:
    """Render an AWS SAM template, a Dockerfile and Terraform modules from the project.

    \b
    The stack: a landing bucket whose new objects (or .SUCCESS markers) start one Step
    Functions execution each; the pipeline's nodes as Lambda tasks of one container image;
    a load function in the VPC with the same exactly-once loader and ledger; SNS
    notifications, dead-letter queues, CloudWatch alarms, and optionally RDS PostgreSQL.

    \b
    Then: cd infra && sam build && sam deploy --guided   (docs/deploy-aws.md)
    """
    from chute.deploy.aws.render import render
    from chute.config.project import load_project

    project = load_project(project_dir)
    target = out_dir or project.root / "infra"
    report = render(project, target, nested=nested)
    if ci_kinds:
        from chute.deploy.ci import render_ci

        report["ci"] = [path for kind in ci_kinds for path in render_ci(project, target, kind)]
    failed = False
    if check:
        from chute.deploy.aws.check import run_checks

        results = run_checks(target)
        if ci_kinds:
            from chute.deploy.ci import check_ci

            results += check_ci(report["ci"])
        report["checks"] = [r.to_dict() for r in results]
        failed = any(r.status == "failed" for r in results)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        out.print(f"Rendered {len(report['files'])} files and the image sources into [bold]{report['out']}[/] "
                  f"({len(report['nodes'])} pipeline node(s), {report['state_machine_states']} top-level states)",
                  highlight=False)
        for path in report.get("ci", []):
            out.print(f"CI/CD: {path}", highlight=False)
        for r in report.get("checks", []):
            colour = {"passed": "green", "failed": "red"}.get(r["status"], "yellow")
            out.print(f"  [{colour}]{r['status']:>11}[/]  {r['tool']}: {r['summary']}", highlight=False)
            for line in r["findings"][:40]:
                out.print(f"               {line}", highlight=False, markup=False, soft_wrap=True)
        if not check:
            out.print(f"Next: cd {target} && sam build && sam deploy --guided   (or --check to validate offline)",
                      highlight=False)
    if failed:
        if not as_json:
            err.print("[bold red]checks failed[/]")
        sys.exit(EXIT_FAILED)


@deploy.command("rerun")
@click.argument("batch_id")
@click.option("--state-machine", "state_machine", required=True,
              help="The pipeline's state machine ARN (the stack output StateMachineArn).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of text.")
def rerun(batch_id: str, state_machine: str, as_json: bool) -> None:
    """Run an AWS batch again: a new execution BATCH_ID-rN of the same files.

    \b
    The ledger keeps the load exactly once: files already loaded are left alone, a file fixed
    since its failure loads. For a step that failed for good, `aws stepfunctions
    redrive-execution` resumes the execution itself instead (docs/deploy-aws.md).
    """
    import boto3

    from chute.deploy.aws.rerun import rerun as start

    started = start(boto3.client("stepfunctions"), boto3.client("s3"), state_machine, batch_id)
    if as_json:
        click.echo(json.dumps(started, indent=2))
    else:
        out.print(f"Started {started['execution']} ({started['files']} files in {started['items']} items): "
                  f"{started['execution_arn']}", highlight=False)
