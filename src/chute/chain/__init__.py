"""Chained pipelines: one project's loads feed the next through a queue in the ledger.

    [follow]                      in the downstream project's chute.toml
    project = "branches"          the upstream pipeline (same database)
    on = "rows"                   messages carry keys of rows the upstream loaded into `table`
    table = "branches"
    key = "branch_id"

    config.py    the [follow] model
    queue.py     chute.subscriptions, chute.queue: subscribe, claim (SKIP LOCKED + lease), ack, fail
    publish.py   commit hooks: Publisher (upstream: enqueue in the load transaction) and
                 Acker (downstream: acknowledge in the load transaction)
    consume.py   a following stage's run
    trigger.py   `chute watch` of a following stage: a run when messages wait

See docs/chains.md.
"""
