"""The pipeline's DAG as an Amazon States Language definition.

    Prepare (head the files, apply file filters)
      -> Files: a Map over the batch's files, each one:
           Read (landing CSV -> staged Parquet of the input dataset)
           -> one state per level of the DAG: a Task for a lone node, a Parallel of Tasks
              for nodes that do not depend on each other
      -> Load (staged table datasets -> PostgreSQL, exactly once, with the ledger)
      -> Loaded?  all files loaded -> NotifySuccess
                  else            -> NotifyFailure -> Failed
    Any state that fails after its retries is caught into NotifyFailure.

Every Task passes the batch's coordinates, never data: datasets travel as Parquet under
the staging prefix at keys derived from the batch and the file (see staging.py), so the
state payload stays small whatever the file size (Step Functions caps it at 256 KB).
"""

from __future__ import annotations

from typing import Any

from chute.pipeline.graph import Plan

# Errors worth another try: Lambda's own hiccups, and the handlers' RetryStep (S3 or the
# database unreachable for a moment, another load holding the pipeline's lock). A Lambda error's
# name is its exception's class name: keep "RetryStep" in step with handlers.RetryStep (the
# handlers are not imported here: rendering a template needs none of their dependencies).
TRANSIENT_ERRORS = [
    "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException", "RetryStep",
]
RETRY = [{"ErrorEquals": TRANSIENT_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2.0}]
CATCH = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure"}]
MAP_CONCURRENCY = 10


def levels(plan: Plan) -> list[list[str]]:
    """Per-batch nodes grouped so that each group depends only on earlier groups."""
    producer = {out: n.name for n in plan.batch for out in n.outputs}
    depth: dict[str, int] = {}
    for n in plan.batch:  # plan.batch is in topological order
        depth[n.name] = 1 + max((depth[producer[i]] for i in n.inputs if i in producer), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in plan.batch:
        grouped[depth[n.name]].append(n.name)
    return grouped


def _task(function: str, parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": function, "Parameters": parameters, "Retry": RETRY, **extra}


def _file_params(action: str, **more: Any) -> dict[str, Any]:
    return {"action": action, **more, "batch_id.$": "$.batch_id", "bucket.$": "$.bucket", "file.$": "$.file"}


def definition(plan: Plan, functions: dict[str, str], comment: str = "") -> dict[str, Any]:
    """The state machine. `functions` maps node, load and notify to a Lambda ARN (or a
    placeholder that the template substitutes)."""
    per_file: dict[str, Any] = {}
    order = ["Read"] + [f"Level{i}" for i in range(len(levels(plan)))]
    per_file["Read"] = _task(functions["node"], _file_params("read"), ResultPath=None)
    for i, names in enumerate(levels(plan)):
        if len(names) == 1:
            state = _task(functions["node"], _file_params("node", node=names[0]), ResultPath=None)
            state["Comment"] = f"node {names[0]}"
        else:
            state = {"Type": "Parallel", "Comment": "independent nodes: " + ", ".join(names), "ResultPath": None,
                     "Branches": [{"StartAt": name, "States": {
                         name: _task(functions["node"], _file_params("node", node=name), End=True)}}
                         for name in names]}
        per_file[order[i + 1]] = state
    for this, after in zip(order, order[1:]):
        per_file[this]["Next"] = after
    per_file[order[-1]]["End"] = True

    batch = {"batch_id.$": "$.batch_id", "bucket.$": "$.bucket"}
    states: dict[str, Any] = {
        "Prepare": _task(functions["node"], {"action": "prepare", **batch, "files.$": "$.files"},
                         ResultPath="$.prepared", Next="Files", Catch=CATCH),
        "Files": {
            "Type": "Map", "ItemsPath": "$.prepared.files", "MaxConcurrency": MAP_CONCURRENCY,
            "ItemSelector": {**batch, "file.$": "$$.Map.Item.Value"},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Read", "States": per_file},
            "ResultPath": None, "Next": "Load", "Catch": CATCH,
        },
        "Load": _task(functions["load"], {"action": "load", **batch, "files.$": "$.prepared.files",
                                          "excluded.$": "$.prepared.excluded"},
                      ResultPath="$.summary", Next="Loaded?", Catch=CATCH),
        "Loaded?": {"Type": "Choice", "Default": "NotifyFailure",
                    "Choices": [{"Variable": "$.summary.status", "StringEquals": "succeeded", "Next": "NotifySuccess"}]},
        "NotifySuccess": _task(functions["notify"], {"action": "notify", "outcome": "succeeded", "execution.$": "$"},
                               ResultPath=None, End=True),
        "NotifyFailure": _task(functions["notify"], {"action": "notify", "outcome": "failed", "execution.$": "$"},
                               ResultPath=None, Next="Failed"),
        "Failed": {"Type": "Fail", "Error": "ChuteRunFailed", "Cause": "a file or a step failed; see the notification"},
    }
    return {"Comment": comment or "chute pipeline", "StartAt": "Prepare", "States": states}
