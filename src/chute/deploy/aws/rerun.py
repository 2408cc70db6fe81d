"""Re-run a batch on AWS: a new execution of the same files, exactly once by the ledger.

    chute deploy rerun BATCH_ID --state-machine ARN

It reads the batch's execution input (coordinates only), copies its manifest to the new
batch, and starts `<batch>-r<n>` (n = 1, 2, ...: the first name not taken). The new
execution has its own staging prefix (its own staged data and children's results) and its
own run in chute.runs. Files the first one loaded come back `unchanged`; a file that failed
and was fixed since (new content) loads; one that failed with the same content fails again.
Process reads the objects as they are now (the manifest pins keys, not versions).

For a step that failed for good (the database away past the retries), redrive instead:
`aws stepfunctions redrive-execution --execution-arn ARN` resumes at that step.
"""

from __future__ import annotations

import json
from typing import Any

from chute.deploy.aws.names import EXECUTION_NAME_MAX
from chute.deploy.aws.staging import Staging


def rerun(sfn: Any, s3: Any, state_machine: str, batch_id: str, staging_prefix: str = "staging/") -> dict[str, Any]:
    execution_arn = state_machine.replace(":stateMachine:", ":execution:", 1) + ":" + batch_id
    given = json.loads(sfn.describe_execution(executionArn=execution_arn)["input"])
    if "manifest" not in given:
        raise ValueError(f"execution {batch_id} has no manifest in its input (rendered before chute's issue 22?)")
    origin = given.get("rerun_of") or batch_id
    items = Staging(s3, given["manifest"]["bucket"], staging_prefix, given["batch_id"]).get_manifest()
    for n in range(1, 1000):
        suffix = f"-r{n}"
        name = origin[:EXECUTION_NAME_MAX - len(suffix)] + suffix
        manifest = Staging(s3, given["manifest"]["bucket"], staging_prefix, name).put_manifest(items)
        batch = {**given, "batch_id": name, "manifest": manifest, "rerun_of": origin}
        try:
            started = sfn.start_execution(stateMachineArn=state_machine, name=name, input=json.dumps(batch))
        except sfn.exceptions.ExecutionAlreadyExists:
            continue
        return {"execution": name, "execution_arn": started["executionArn"], "rerun_of": origin,
                "files": batch.get("files"), "items": len(items)}
    raise RuntimeError(f"{origin} was re-run 999 times already")
