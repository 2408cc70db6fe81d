"""What the AWS stack holds, worked out once from the project; sam.py and terraform.py
render the same model, so the two never drift apart.

Permissions are written here as (actions, resources) with resources named symbolically
("landing_objects", "topic", ...); each renderer says what those names are in its language.
No statement grants `*` actions, and `*` resources appear only for actions AWS does not let
one scope (X-Ray segments, log delivery set-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chute.pipeline.graph import Plan
from chute.config.project import Project
from chute.run.plan import build_plan
from chute.deploy.aws import statemachine
from chute.deploy.aws.names import chain_topic_name, resource_prefix

HANDLERS = "chute.deploy.aws.handlers"
PROJECT_DIR_IN_IMAGE = "/var/task/project"  # where the Dockerfile copies the project
STAGING_PREFIX = "staging/"
EXPORTS_PREFIX = "exports/"  # [tables.*] export files, in the staging bucket (kept: no expiry)
STAGING_DAYS = 7  # staged Parquet is only needed while an execution runs (and for a look after)
LOG_RETENTION_DAYS = 365
MARKER = ".SUCCESS"
SWEEP_MINUTES = 5  # a chained stage's sweeper: a run this often, whatever woke it (a lost wake-up strands nothing)
STAGE_QUEUE_AGE_S = 1800  # alarm: a wake-up waited longer than this in a stage's queue


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # symbolic names, resolved by each renderer
    condition: str | None = None  # symbolic, e.g. "db" (only when the stack has a database)


@dataclass(frozen=True)
class Function:
    key: str  # trigger | node | load | notify | stage (a project with [follow])
    handler: str
    description: str
    memory_mb: int
    timeout_s: int
    in_vpc: bool
    environment: tuple[str, ...]  # symbolic names of the environment variables it gets
    statements: tuple[Statement, ...]
    reserved_concurrency: int
    # Invoked asynchronously by some path (an EventBridge rule or schedule): only then a
    # dead-letter queue means anything. Step Functions (sync) sees a failed invocation itself and
    # an SQS event source returns a failed message to its queue, whose RedrivePolicy is the DLQ.
    asynchronous: bool = False

    @property
    def command(self) -> str:
        return f"{HANDLERS}.{self.key}"

    @property
    def event_source_concurrency(self) -> int:
        """ScalingConfig.MaximumConcurrency of its SQS event source: at most its reserved
        concurrency (more would be throttled, and throttled messages end in the DLQ), at least
        AWS's minimum of 2."""
        return max(2, self.reserved_concurrency)


_KEY = Statement(("kms:Decrypt", "kms:GenerateDataKey"), ("key",))

# Actions with no resource-level permission: `*` is the only resource AWS accepts for them
# (the Service Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/).
# No other statement may name the resource `*` (tests/test_deploy_aws.py: test_iam_is_least_privilege).
STAR_ONLY_ACTIONS = frozenset({
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ecr:GetAuthorizationToken",
})
# The key policy, with every action named (no kms:*): the account administers the key and uses it
# through IAM policies; kms:PutKeyPolicy is in, so nobody is locked out.
KEY_ADMIN_ACTIONS = (
    "kms:CreateAlias", "kms:CreateGrant", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
    "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation", "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants", "kms:ListKeyPolicies",
    "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RetireGrant", "kms:RevokeGrant", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
    "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo")
KEY_LOGS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey")


# A function in the VPC: its network interfaces (what the managed AWSLambdaVPCAccessExecutionRole
# allows on `*`, written out and scoped). Describe* has no resource-level permission; an ENI's id
# is not known before Lambda creates it, hence network-interface/*.
VPC_STATEMENTS = (
    Statement(("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"), ("*",)),
    Statement(("ec2:CreateNetworkInterface",), ("vpc_subnets", "vpc_security_groups", "network_interfaces")),
    Statement(("ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"),
              ("network_interfaces",)),
)
_XRAY = Statement(("xray:PutTraceSegments", "xray:PutTelemetryRecords"), ("*",))


def _functions(follows: bool = False, load_concurrency: int = 4) -> list[Function]:
    def logs(key: str) -> Statement:
        return Statement(("logs:CreateLogStream", "logs:PutLogEvents"), (f"log_group:{key}",))

    def dlq() -> Statement:
        return Statement(("sqs:SendMessage",), ("functions_dlq",))

    functions = [
        Function("trigger", f"{HANDLERS}.trigger", "S3 event or .SUCCESS marker -> one Step Functions execution",
                 512, 60, False, ("project_dir", "state_machine", "landing_prefix", "wait_for_marker",
                                  "staging_bucket", "staging_prefix"), (
                     Statement(("states:StartExecution",), ("state_machine",)),
                     # The batch's manifest, which the state machine's Map reads; the batches the
                     # hourly sweep looks at again (late files).
                     Statement(("s3:PutObject", "s3:GetObject"), ("staging_objects",)),
                     Statement(("s3:ListBucket",), ("staging_bucket",)),
                     Statement(("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                "sqs:ChangeMessageVisibility"), ("events_queue",)),
                     Statement(("s3:ListBucket",), ("landing_bucket",)),
                     Statement(("s3:GetObject",), ("landing_objects",)),
                     _KEY, _XRAY, logs("trigger"), dlq()), 5, asynchronous=True),  # the sweep's schedule
        Function("node", f"{HANDLERS}.node", "Read a landing file or run a pipeline node on staged Parquet",
                 3008, 900, False, ("project_dir", "staging_bucket", "staging_prefix", "landing_prefix"), (
                     Statement(("s3:ListBucket",), ("landing_bucket", "staging_bucket")),
                     Statement(("s3:GetObject",), ("landing_objects",)),
                     Statement(("s3:GetObject", "s3:PutObject"), ("staging_objects",)),
                     _KEY, _XRAY, logs("node")), 50),
        Function("load", f"{HANDLERS}.load", "Load staged datasets into PostgreSQL exactly once, with the ledger",
                 2048, 900, True, ("project_dir", "staging_bucket", "staging_prefix", "landing_prefix", "db_secret"), (
                     Statement(("s3:ListBucket",), ("staging_bucket",)),
                     Statement(("s3:GetObject",), ("staging_objects",)),
                     Statement(("secretsmanager:GetSecretValue",), ("db_secret",)),
                     # The tables' exports (multipart uploads).
                     Statement(("s3:PutObject", "s3:AbortMultipartUpload"), ("staging_exports",)),
                     _KEY, _XRAY, logs("load")), load_concurrency),
        Function("notify", f"{HANDLERS}.notify", "Publish a run's outcome to SNS; park a failed batch in its queue",
                 256, 60, False, ("project_dir", "topic", "failed_runs_queue", "chain_topic"), (
                     Statement(("sns:Publish",), ("topic", "chain_topic")),
                     Statement(("sqs:SendMessage",), ("failed_runs_queue",)),
                     _KEY, _XRAY, logs("notify"), dlq()), 5, asynchronous=True),
    ]
    if follows:
        # A chained stage: `chute run -p STAGE` on Lambda (in the VPC: it reads chute.queue and loads
        # the database). Its extractions write into the landing bucket, which its run then loads.
        functions.append(Function(
            "stage", f"{HANDLERS}.stage", "Chained stage: claim its chute.queue messages, extract, load, acknowledge",
            2048, 900, True, ("project_dir", "landing_bucket", "db_secret", "chain_topic"), (
                Statement(("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                           "sqs:ChangeMessageVisibility"), ("stage_queue",)),
                # A middle stage wakes the stages that follow it, as the notify step does for a batch.
                Statement(("sns:Publish",), ("chain_topic",)),
                Statement(("s3:ListBucket",), ("landing_bucket",)),
                Statement(("s3:GetObject", "s3:PutObject"), ("landing_objects",)),
                Statement(("secretsmanager:GetSecretValue",), ("db_secret",)),
                _KEY, _XRAY, logs("stage"), dlq()), 2, asynchronous=True))
    return functions


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge Scheduler schedule -> the extract function (its extractions into the landing
    bucket, then a .SUCCESS marker in each folder it wrote: the marker path loads them)."""
    key: str  # a logical id's stem
    name: str  # the extraction or [[schedules]] entry
    cron: str  # chute's expression
    expression: str  # AWS's cron(...)
    extract: tuple[str, ...]

    @property
    def input(self) -> str:
        import json

        return json.dumps({"action": "extract", "schedule": self.name, "extract": list(self.extract),
                           "fire": "<aws.scheduler.scheduled-time>"})


def schedules_of(project: Project) -> list[ScheduleSpec]:
    """Every `[extract.NAME] schedule` and every `[[schedules]]` entry that names extractions (one
    that names none has nothing to do on AWS: landing files start their loads by themselves)."""
    from chute.deploy.aws.names import aws_cron, logical_id

    out = [ScheduleSpec("Extract" + logical_id(name), name, spec.schedule, aws_cron(spec.schedule), (name,))
           for name, spec in sorted(project.extract.items()) if spec.schedule]
    out += [ScheduleSpec("Schedule" + logical_id(s.name), s.name, s.cron, aws_cron(s.cron), tuple(s.extract))
            for s in project.schedules if s.extract]
    return out


SWEEP_SCHEDULE = "rate(1 hour)"  # late files: the trigger looks at the last 48 hours' batches again
SWEEP_INPUT = '{"action": "sweep"}'


def scheduler_statements(with_extract: bool) -> tuple[Statement, ...]:
    """EventBridge Scheduler's role: invoke the trigger (the sweep) and the extract function,
    dead-letter to the functions' DLQ."""
    functions = ("function:trigger",) + (("function:extract",) if with_extract else ())
    return (Statement(("lambda:InvokeFunction",), functions), Statement(("sqs:SendMessage",), ("functions_dlq",)),
            _KEY)


def _extract_function() -> Function:
    return Function(
        "extract", f"{HANDLERS}.extract", "Scheduled extractions into the landing bucket, then their .SUCCESS markers",
        2048, 900, True, ("project_dir", "landing_bucket", "landing_prefix", "db_secret"), (
            Statement(("s3:ListBucket",), ("landing_bucket",)),
            Statement(("s3:GetObject", "s3:PutObject"), ("landing_objects",)),
            Statement(("secretsmanager:GetSecretValue",), ("db_secret",)),
            _KEY, _XRAY, Statement(("logs:CreateLogStream", "logs:PutLogEvents"), ("log_group:extract",)),
            Statement(("sqs:SendMessage",), ("functions_dlq",))), 1, asynchronous=True)


@dataclass(frozen=True)
class Queue:
    key: str
    description: str
    dead_letter_of: str | None = None  # the queue whose failed messages land here
    consumer: str | None = None  # the function an event source mapping feeds from this queue
    dead_letter_queue: str | None = None  # where messages go after max_receive_count receives
    max_receive_count: int = 5


QUEUES = [
    Queue("events_queue", "S3 object events (via EventBridge) waiting for the trigger function",
          consumer="trigger", dead_letter_queue="events_dlq"),
    Queue("events_dlq", "events the trigger failed on after its retries", dead_letter_of="events_queue"),
    Queue("functions_dlq", "failed asynchronous invocations: notify (from the execution status rule), "
                           "stage (from its sweeper schedule)"),
    Queue("failed_runs_queue", "batches whose execution failed, for a look and a redrive"),
]


def _queues(project: Project) -> list[Queue]:
    queues = list(QUEUES)
    if project.follow is not None:
        # SQS carries the wake-ups; the work itself (keys, attempts, dead letters) stays in chute.queue.
        attempts = project.follow.max_attempts or project.watch.max_attempts
        queues += [Queue("stage_queue", f"wake-ups of this stage from {project.follow.project}'s chain topic",
                         consumer="stage", dead_letter_queue="stage_dlq", max_receive_count=attempts),
                   Queue("stage_dlq", "wake-ups the stage function failed on after its retries",
                         dead_letter_of="stage_queue")]
    return queues


@dataclass(frozen=True)
class Alarm:
    key: str
    namespace: str
    metric: str
    statistic: str
    threshold: float
    dimension: tuple[str, str]  # (dimension name, symbolic resource)
    description: str


def _alarms(functions: list[Function], queues: list[Queue]) -> list[Alarm]:
    alarms: list[Alarm] = []
    for f in functions:
        dim = ("FunctionName", f"function:{f.key}")
        alarms += [
            Alarm(f"{f.key}_errors", "AWS/Lambda", "Errors", "Sum", 0, dim, f"{f.key} function raised errors"),
            Alarm(f"{f.key}_throttles", "AWS/Lambda", "Throttles", "Sum", 0, dim, f"{f.key} function was throttled"),
            Alarm(f"{f.key}_duration", "AWS/Lambda", "Duration", "Maximum", f.timeout_s * 1000 * 0.8, dim,
                  f"{f.key} function ran above 80% of its timeout"),
        ]
    alarms += [
        Alarm("executions_failed", "AWS/States", "ExecutionsFailed", "Sum", 0, ("StateMachineArn", "state_machine"),
              "a pipeline execution failed"),
        Alarm("executions_timed_out", "AWS/States", "ExecutionsTimedOut", "Sum", 0,
              ("StateMachineArn", "state_machine"), "a pipeline execution timed out"),
    ]
    for q in queues:
        if q.key == "stage_queue":
            alarms.append(Alarm("stage_queue_age", "AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum",
                                STAGE_QUEUE_AGE_S, ("QueueName", f"queue_name:{q.key}"),
                                f"a wake-up of the stage waited over {STAGE_QUEUE_AGE_S} s"))
        elif q.consumer is None:
            alarms.append(Alarm(f"{q.key}_depth", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 0,
                                ("QueueName", f"queue_name:{q.key}"), f"messages waiting in {q.key}"))
    return alarms


STATE_MACHINE_STATEMENTS = (
    Statement(("lambda:InvokeFunction",), ("function:node", "function:load", "function:notify")),
    # The Distributed Map: it reads the manifest, writes its results, and runs its children as
    # executions of this state machine (AWS's documented policy for a Distributed Map).
    Statement(("s3:GetObject",), ("staging_objects",)),
    Statement(("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"),
              ("map_results",)),
    Statement(("s3:ListBucket",), ("staging_bucket",)),
    Statement(("states:StartExecution",), ("state_machine_self",)),
    Statement(("states:DescribeExecution", "states:StopExecution"), ("state_machine_executions",)),
    Statement(("states:RedriveExecution",), ("state_machine_executions", "state_machine_map_runs")),
    # Log delivery and X-Ray cannot be scoped to a resource (AWS's own policy for Step Functions logging).
    Statement(("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
               "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
               "logs:DescribeLogGroups"), ("*",)),
    Statement(("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
               "xray:GetSamplingTargets"), ("*",)),
    _KEY,
)


@dataclass
class StackModel:
    project: Project
    plan: Plan
    prefix: str
    functions: list[Function] = field(default_factory=_functions)
    queues: list[Queue] = field(default_factory=lambda: list(QUEUES))

    @property
    def alarms(self) -> list[Alarm]:
        return _alarms(self.functions, self.queues)

    @property
    def upstream(self) -> str | None:
        """The project this one follows ([follow] project), or None."""
        return self.project.follow.project if self.project.follow is not None else None

    def chain_topic_name(self, environment: str) -> str:
        return chain_topic_name(self.project.name, environment)

    def upstream_topic_name(self, environment: str) -> str:
        assert self.upstream is not None
        return chain_topic_name(self.upstream, environment)

    def queue(self, key: str) -> Queue:
        return next(q for q in self.queues if q.key == key)

    def function(self, key: str) -> Function:
        return next(f for f in self.functions if f.key == key)

    def definition(self, arns: dict[str, str]) -> dict[str, Any]:
        """`arns`: node, load and notify -> function ARNs, staging_bucket -> the bucket's name."""
        settings = self.project.aws
        return statemachine.definition(
            self.plan, arns, f"chute pipeline {self.project.name}",
            # A table in replace mode is emptied once per run: its children load one at a time.
            map_concurrency=1 if self.exclusive else settings.map_concurrency,
            tolerated_failure_percentage=settings.tolerated_failure_percentage, runner=settings.load_runner)

    @property
    def schedules(self) -> list[ScheduleSpec]:
        return schedules_of(self.project)

    @property
    def fargate(self) -> bool:
        return self.project.aws.load_runner == "fargate"

    @property
    def placeholders(self) -> dict[str, str]:
        return {**PLACEHOLDERS, **(FARGATE_PLACEHOLDERS if self.fargate else {})}

    def task_statements(self) -> tuple[Statement, ...]:
        """The Fargate task's role: what the node and load functions may do, its own log group."""
        out: list[Statement] = []
        for f in (self.function("node"), self.function("load")):
            for s in f.statements:
                if s.actions[0].startswith("logs:") or s.resources == ("functions_dlq",) or s in out:
                    continue
                out.append(s)
        out.append(Statement(("logs:CreateLogStream", "logs:PutLogEvents"), ("log_group:task",)))
        return tuple(out)

    def task_environment(self) -> tuple[str, ...]:
        seen: list[str] = []
        for f in (self.function("node"), self.function("load")):
            seen += [e for e in f.environment if e not in seen]
        return tuple(seen)

    def state_machine_statements(self) -> tuple[Statement, ...]:
        if not self.fargate:
            return STATE_MACHINE_STATEMENTS
        return STATE_MACHINE_STATEMENTS + FARGATE_STATE_MACHINE_STATEMENTS

    @property
    def exclusive(self) -> bool:
        return any(t.mode == "replace" for t in self.project.tables.values())


def _database_access(functions: list[Function], project: Project) -> list[Function]:
    """The functions that open the database: through the RDS Proxy's endpoint, with IAM tokens."""
    from dataclasses import replace

    out = []
    for f in functions:
        if "db_secret" in f.environment:
            env = f.environment + ("db_ca",) + (("db_host",) if project.aws.rds_proxy else ()) \
                + (("db_auth",) if project.aws.database_auth == "iam" else ())
            user = "db_user_proxy" if project.aws.rds_proxy else "db_user"
            statements = f.statements + ((Statement(("rds-db:connect",), (user,)),)
                                         if project.aws.database_auth == "iam" else ())
            f = replace(f, environment=env, statements=statements)
        if f.in_vpc:
            f = replace(f, statements=f.statements + VPC_STATEMENTS)
        out.append(f)
    return out


def build_model(project: Project) -> StackModel:
    functions = _functions(project.follow is not None, project.aws.load_concurrency)
    if schedules_of(project):
        functions.append(_extract_function())
    return StackModel(project, build_plan(project), resource_prefix(project.name),
                      functions=_database_access(functions, project), queues=_queues(project))


# What the rendered state machine names by placeholder (SAM DefinitionSubstitutions, Terraform templatefile).
PLACEHOLDERS = {"node": "${NodeFunctionArn}", "load": "${LoadFunctionArn}", "notify": "${NotifyFunctionArn}",
                "staging_bucket": "${StagingBucketName}"}

FARGATE_PLACEHOLDERS = {"cluster": "${TaskClusterArn}", "task_definition": "${TaskDefinitionArn}",
                        "subnets": "${SubnetList}", "security_group": "${TaskSecurityGroup}"}
# Step Functions running an ECS task and waiting for it (.sync): AWS's documented policy, scoped.
FARGATE_STATE_MACHINE_STATEMENTS = (
    Statement(("ecs:RunTask",), ("task_definition",)),
    Statement(("ecs:StopTask", "ecs:DescribeTasks"), ("cluster_tasks",)),
    Statement(("iam:PassRole",), ("task_role", "task_execution_role")),
    Statement(("events:PutTargets", "events:PutRule", "events:DescribeRule"), ("ecs_sync_rule",)),
)
TASK_EXECUTION_STATEMENTS = (
    Statement(("ecr:GetAuthorizationToken",), ("*",)),  # no resource-level permission exists for it
    Statement(("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
              ("ecr_repositories",)),
    Statement(("logs:CreateLogStream", "logs:PutLogEvents"), ("log_group:task",)),
)

# Environment variables the handlers read, by symbolic name.
ENVIRONMENT = {
    "project_dir": "CHUTE_PROJECT_DIR",
    "state_machine": "CHUTE_STATE_MACHINE_ARN",
    "landing_prefix": "CHUTE_LANDING_PREFIX",
    "wait_for_marker": "CHUTE_WAIT_FOR_MARKER",
    "staging_bucket": "CHUTE_STAGING_BUCKET",
    "staging_prefix": "CHUTE_STAGING_PREFIX",
    "db_secret": "CHUTE_DB_SECRET_ARN",
    "topic": "CHUTE_TOPIC_ARN",
    "failed_runs_queue": "CHUTE_FAILED_RUNS_QUEUE_URL",
    "chain_topic": "CHUTE_CHAIN_TOPIC_ARN",
    "landing_bucket": "CHUTE_LANDING_BUCKET",
    "db_host": "CHUTE_DB_HOST",  # with an RDS Proxy: its endpoint (the secret names the instance)
    "db_ca": "CHUTE_DB_CA",  # the RDS CA bundle in the image: TLS with sslmode=verify-full
    "db_auth": "CHUTE_DB_AUTH",  # iam: a token from rds generate-db-auth-token instead of the password
}
RDS_CA_IN_IMAGE = "/opt/chute/rds-ca.pem"
