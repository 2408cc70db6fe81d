"""One child of the state machine's Map as an ECS Fargate task ([aws] load_runner = "fargate"):
`python -m chute.deploy.aws.task`, in the functions' image, with the child's input in
$CHUTE_EVENT. It does what the Lambda child does (statemachine.child): process the item's
files, one at a time when processing them together crashes, then load them, with no 15-minute
or 10 GB limit. A file that still crashes alone is recorded failed with the error; the rest load.
"""

from __future__ import annotations

import json
import os
import sys

from chute.deploy.aws import handlers


def run(event: dict) -> dict:
    try:
        handlers.node({**event, "action": "process"})
    except Exception as crash:  # find the file: one at a time, the crashing one recorded
        for key in event["keys"]:
            one = {**event, "keys": [key]}
            try:
                handlers.node({**one, "action": "process", "skip_done": True})
            except Exception as exc:
                error = {"Error": type(exc).__name__, "Cause": json.dumps({"errorMessage": str(exc)})}
                handlers.node({**one, "action": "unreadable", "error": error})
        del crash
    return handlers.load({**event, "action": "load"})


def main() -> int:
    event = json.loads(os.environ["CHUTE_EVENT"])
    print(json.dumps(run(event)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
