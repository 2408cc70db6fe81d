"""The long-running service (`chute watch`): triggers start runs; retries, metrics.

    service.py        the loop: requests from triggers -> runs, with backoff on transient errors
    trigger.py        Trigger, PollingTrigger, RunRequest: the one-method seam of a trigger
    folder.py         a local folder (watchdog), with settle time and markers
    s3.py, s3_queue.py  S3 events through SQS (and the queue's set-up), and polling
    schedule.py       cron schedules, with missed fires recorded
    queue_trigger.py  a chained stage: a run when messages wait
    metrics.py        Prometheus /metrics

May import: run and below.
"""
