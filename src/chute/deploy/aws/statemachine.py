"""The pipeline as an Amazon States Language definition: a batch of any size in a state
whose payload and parent history stay the same size.

    Begin     the tables, and the run in chute.runs (once; found again when retried or redriven)
    Files     a DISTRIBUTED Map over the batch's manifest in S3 (ItemReader): one child
              execution per item of a few keys (the trigger groups them; moto, which the tests
              run on, rejects ItemBatcher). Each child:
                Process   read its files, run every per-batch node, stage the tables' datasets
                          (a bad file is recorded in its meta, the others go on)
                  crashed (out of memory, timed out)? -> Isolate: the item's files one at a
                          time (ProcessOne), a file that crashes again -> Unreadable: recorded
                          failed with the crash's error. One file cannot sink the others.
                Load      the item's files into PostgreSQL, one transaction per file, with the
                          ledger; what it did -> a result object in S3
              Results: ResultWriter to S3, so the parent holds only the map run's coordinates.
    Finish    the children's results -> the run's counts (files of a child that never finished
              -> failed), the run closed in chute.runs; only counts go back into the state
    Loaded?   every file loaded -> NotifySuccess; else NotifyFailure -> FilesFailed

Begin, Files and Finish only retry: a step that fails for good fails the execution at that
step, so `aws stepfunctions redrive-execution` resumes there (a Distributed Map redrive re-runs
only its failed children). Every step is idempotent: the ledger keeps the load exactly once.

Every Task passes coordinates, never data: datasets travel as Parquet under the staging
prefix (staging.py), so no state comes near Step Functions' 256 KiB payload limit.
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
# A Load throttled by its reserved concurrency (the database's bound) waits its turn: more tries.
LOAD_RETRY = [{"ErrorEquals": TRANSIENT_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 8, "BackoffRate": 2.0,
               "MaxDelaySeconds": 60}]
RESULTS_PREFIX = "map-results"  # ResultWriter's prefix in the staging bucket (AWS adds the map run's id)


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


def _task(function: str, parameters: dict[str, Any], retry: list | None = None, **extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": function, "Parameters": parameters, "Retry": retry or RETRY, **extra}


ITEM = {"batch_id.$": "$.batch_id", "bucket.$": "$.bucket", "run_id.$": "$.run_id", "index.$": "$.index"}


def child(functions: dict[str, str]) -> dict[str, Any]:
    """The states of one child: its item's keys processed and loaded."""
    one = {"StartAt": "ProcessOne", "States": {
        "ProcessOne": _task(functions["node"], {"action": "process", "skip_done": True, **ITEM, "keys.$": "$.keys"},
                            ResultPath=None, End=True,
                            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Unreadable"}]),
        "Unreadable": _task(functions["node"], {"action": "unreadable", **ITEM, "keys.$": "$.keys",
                                                "error.$": "$.error"}, ResultPath=None, End=True),
    }}
    return {"StartAt": "Process", "States": {
        "Process": _task(functions["node"], {"action": "process", **ITEM, "keys.$": "$.keys"}, ResultPath=None,
                         Next="Load", Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.crash",
                                              "Next": "Isolate"}]),
        "Isolate": {"Type": "Map", "Comment": "the item's processing crashed: its files one at a time",
                    "ItemsPath": "$.keys", "MaxConcurrency": 1,
                    "ItemSelector": {"batch_id.$": "$.batch_id", "bucket.$": "$.bucket", "run_id.$": "$.run_id",
                                     "index.$": "$.index", "keys.$": "States.Array($$.Map.Item.Value)"},
                    "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **one},
                    "ResultPath": None, "Next": "Load"},
        "Load": _task(functions["load"], {"action": "load", **ITEM, "keys.$": "$.keys"}, LOAD_RETRY,
                      ResultPath=None, End=True),
    }}


def fargate_child(functions: dict[str, str]) -> dict[str, Any]:
    """One child as one ECS Fargate task (the same image, `python -m chute.deploy.aws.task`): for
    items too big for Lambda's 15 minutes or 10 GB. The task isolates a crashing file itself."""
    return {"StartAt": "Task", "States": {"Task": {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": {
            "Cluster": functions["cluster"], "TaskDefinition": functions["task_definition"], "LaunchType": "FARGATE",
            "NetworkConfiguration": {"AwsvpcConfiguration": {
                "Subnets.$": "States.StringSplit('" + functions["subnets"] + "', ',')",
                "SecurityGroups": [functions["security_group"]], "AssignPublicIp": "DISABLED"}},
            "Overrides": {"ContainerOverrides": [{"Name": "chute", "Environment": [
                {"Name": "CHUTE_EVENT", "Value.$": "States.JsonToString($)"}]}]}},
        "Retry": [{"ErrorEquals": ["ECS.AmazonECSException", "States.TaskFailed"], "IntervalSeconds": 10,
                   "MaxAttempts": 2, "BackoffRate": 2.0}],
        "ResultPath": None, "End": True}}}


def definition(plan: Plan, functions: dict[str, str], comment: str = "", *, map_concurrency: int = 10,
               tolerated_failure_percentage: float = 5.0, runner: str = "lambda") -> dict[str, Any]:
    """The state machine. `functions` maps node, load and notify to a Lambda ARN and
    staging_bucket to the staging bucket's name (or placeholders the template substitutes);
    with runner="fargate", also cluster, task_definition, subnets (comma-separated) and
    security_group."""
    batch = {"batch_id.$": "$.batch_id", "bucket.$": "$.bucket"}
    execution = {**batch, "event_key.$": "$.event_key", "manifest.$": "$.manifest", "summary.$": "$.summary",
                 "execution.$": "$$.Execution.Name"}
    states: dict[str, Any] = {
        "Begin": _task(functions["load"], {"action": "begin", **batch, "execution.$": "$$.Execution.Name"},
                       ResultSelector={"run_id.$": "$.run_id"}, ResultPath="$.begin", Next="Files"),
        "Files": {
            "Type": "Map", "Comment": "one child execution per manifest item (a few files)",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                           "Parameters": {"Bucket.$": "$.manifest.bucket", "Key.$": "$.manifest.key"}},
            "ItemSelector": {**batch, "run_id.$": "$.begin.run_id", "keys.$": "$$.Map.Item.Value.keys",
                             "index.$": "$$.Map.Item.Index"},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                              **(fargate_child(functions) if runner == "fargate" else child(functions))},
            "MaxConcurrency": map_concurrency,
            "ToleratedFailurePercentage": float(tolerated_failure_percentage),
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": functions["staging_bucket"], "Prefix": RESULTS_PREFIX}},
            "ResultSelector": {"map_run.$": "$.MapRunArn"},
            "ResultPath": "$.map", "Retry": [{"ErrorEquals": ["States.ItemReaderFailed", "States.ResultWriterFailed"],
                                              "IntervalSeconds": 5, "MaxAttempts": 3, "BackoffRate": 2.0}],
            "Next": "Finish",
        },
        "Finish": _task(functions["load"], {"action": "finish", **batch, "run_id.$": "$.begin.run_id",
                                            "excluded.$": "$.excluded", "map_run.$": "$.map.map_run",
                                            "execution.$": "$$.Execution.Name"},
                        ResultPath="$.summary", Next="Loaded?"),
        "Loaded?": {"Type": "Choice", "Default": "NotifyFailure",
                    "Choices": [{"Variable": "$.summary.status", "StringEquals": "succeeded", "Next": "NotifySuccess"}]},
        "NotifySuccess": _task(functions["notify"], {"action": "notify", "outcome": "succeeded",
                                                     "execution": execution}, ResultPath=None, End=True),
        "NotifyFailure": _task(functions["notify"], {"action": "notify", "outcome": "failed",
                                                     "execution": execution}, ResultPath=None, Next="FilesFailed"),
        "FilesFailed": {"Type": "Fail", "Error": "ChuteFilesFailed",
                        "Cause": "some files failed (recorded in chute.files); see the notification"},
    }
    process = states["Files"]["ItemProcessor"]["States"].get("Process")
    if process is not None and (plan.static or plan.batch):  # the graph, readable in the console
        process["Comment"] = "runs the pipeline's nodes in order: " + " -> ".join(
            n.name for n in [*plan.static, *plan.batch])
    return {"Comment": comment or "chute pipeline", "StartAt": "Begin", "States": states}
