"""The AWS deployment: a SAM template and Terraform modules rendered from the project, and
the Lambda handlers that run the same pipeline code inside Step Functions.

    names.py         execution names (idempotent starts), resource names, chain topic names
    statemachine.py  the pipeline's DAG -> an Amazon States Language definition
    model.py         what the stack holds, from the project (functions, queues, alarms, tables)
    sam.py           the model -> an AWS SAM (CloudFormation) template
    terraform.py     the model -> Terraform modules
    render.py        writes infra/: template, Dockerfile, state machine, Terraform
    check.py         cfn-lint, sam validate, terraform fmt and checkov on what render wrote
    staging.py       datasets as Parquet under the staging prefix
    staged_load.py   exactly-once load of staged datasets with the ledger (and the chain's messages)
    handlers.py      Lambda entry points: trigger, node, load, notify; stage (a project with [follow])
"""
