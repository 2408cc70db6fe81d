"""The stack model -> an AWS SAM template (a plain dict, dumped to YAML by render.py).

Intrinsic functions are written in their long form ({"Ref": ...}, {"Fn::GetAtt": ...}) so
the YAML needs no custom tags and any YAML or JSON reader can inspect it.
"""

from __future__ import annotations

from typing import Any

from chute.deploy.aws.model import (ENVIRONMENT, LOG_RETENTION_DAYS, MARKER, PROJECT_DIR_IN_IMAGE, STAGING_DAYS, STAGING_PREFIX,
                    EXPORTS_PREFIX, PLACEHOLDERS, RDS_CA_IN_IMAGE, SWEEP_MINUTES, Statement, StackModel)
from chute.deploy.aws.names import logical_id
from chute.deploy.aws.model import (KEY_ADMIN_ACTIONS, KEY_LOGS_ACTIONS, SWEEP_INPUT, SWEEP_SCHEDULE,
                                    TASK_EXECUTION_STATEMENTS, scheduler_statements)
from chute.deploy.aws.statemachine import RESULTS_PREFIX

Json = dict[str, Any]


def ref(name: str) -> Json:
    return {"Ref": name}


def att(name: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [name, attribute]}


def sub(text: str) -> Json:
    return {"Fn::Sub": text}


def if_(condition: str, yes: Any, no: Any) -> Json:
    return {"Fn::If": [condition, yes, no]}


def skip(*reasons: tuple[str, str]) -> Json:
    """checkov findings we accept, each with the reason (read by checkov, shown by --check)."""
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in reasons]}}


QUEUE_IDS = {"events_queue": "EventsQueue", "events_dlq": "EventsDLQ", "functions_dlq": "FunctionsDLQ",
             "failed_runs_queue": "FailedRunsQueue", "stage_queue": "StageQueue", "stage_dlq": "StageDLQ"}

NO_ACCESS_LOGS = ("CKV_AWS_18", "object-level access is audited with CloudTrail data events for the account; "
                                "an access-log bucket per stack would need its own log bucket in turn")
NO_DLQ = ("CKV_AWS_116", "invoked synchronously only (Step Functions, or an SQS event source whose queue has "
                         "its own dead-letter queue): the caller sees the failure; a function DLQ would never "
                         "receive anything")
NO_REPLICATION = ("CKV_AWS_144", "landing files are re-sent by their producers; cross-region replication is a "
                                 "disaster-recovery choice left to the account, not the pipeline")


_DB_USER = "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:%s/chute"


def resolve(name: str) -> Any:
    """A symbolic resource name of the model -> a CloudFormation expression."""
    kind, _, what = name.partition(":")
    if name == "*":
        return "*"
    if kind == "function":
        return att(what.capitalize() + "Function", "Arn")
    if kind == "log_group":
        return att(what.capitalize() + "LogGroup", "Arn")
    if kind == "queue_name":
        return att(QUEUE_IDS[what], "QueueName")
    return {
        "key": att("Key", "Arn"),
        "landing_bucket": att("LandingBucket", "Arn"),
        "landing_objects": sub("${LandingBucket.Arn}/*"),
        "staging_bucket": att("StagingBucket", "Arn"),
        "staging_objects": sub("${StagingBucket.Arn}/" + STAGING_PREFIX + "*"),
        "state_machine": ref("PipelineStateMachine"),
        # By name, not Ref: the state machine's own role cannot depend on the state machine.
        "state_machine_self": sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
                                  "${AWS::StackName}-pipeline"),
        "state_machine_executions": sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
                                        "${AWS::StackName}-pipeline/*"),
        "state_machine_map_runs": sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:mapRun:"
                                      "${AWS::StackName}-pipeline/*"),
        "staging_exports": sub("${StagingBucket.Arn}/" + EXPORTS_PREFIX + "*"),
        "map_results": sub("${StagingBucket.Arn}/" + RESULTS_PREFIX + "/*"),
        # IAM database authentication: the database user, on the instance or on the proxy.
        # (an existing database's resource id is not known here: any instance, the user chute only)
        "db_user": if_("CreateDb", sub(_DB_USER % "${Database.DbiResourceId}"), sub(_DB_USER % "*")),
        "db_user_proxy": if_("CreateDb", {"Fn::Sub": [_DB_USER % "${Id}", {"Id": {"Fn::Select": [
            6, {"Fn::Split": [":", att("DatabaseProxy", "DBProxyArn")]}]}}]}, sub(_DB_USER % "*")),
        "task_definition": ref("TaskDefinition"),
        "cluster_tasks": sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${TaskCluster}/*"),
        "task_role": att("TaskRole", "Arn"),
        "task_execution_role": att("TaskExecutionRole", "Arn"),
        "ecs_sync_rule": sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
                             "rule/StepFunctionsGetEventsForECSTaskRule"),
        "vpc_subnets": sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:subnet/*"),
        "vpc_security_groups": sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/"
                                   "${LoadSecurityGroup}"),
        "network_interfaces": sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*"),
        "ecr_repositories": sub("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"),
        "topic": ref("AlertTopic"),
        "chain_topic": ref("ChainTopic"),
        "db_secret": if_("CreateDb", ref("DbSecret"), ref("ExistingDatabaseSecretArn")),
        "created_db_secret": ref("DbSecret"),
        **{q: att(lid, "Arn") for q, lid in QUEUE_IDS.items()},
    }[name]


def environment(name: str) -> Any:
    return {
        "project_dir": PROJECT_DIR_IN_IMAGE,
        "state_machine": ref("PipelineStateMachine"),
        "landing_prefix": "",
        "wait_for_marker": ref("WaitForMarker"),
        "staging_bucket": ref("StagingBucket"),
        "staging_prefix": STAGING_PREFIX,
        "db_secret": resolve("db_secret"),
        "topic": ref("AlertTopic"),
        "failed_runs_queue": ref("FailedRunsQueue"),
        "chain_topic": ref("ChainTopic"),
        "landing_bucket": ref("LandingBucket"),
        "db_host": if_("CreateDb", att("DatabaseProxy", "Endpoint"), ""),
        "db_ca": RDS_CA_IN_IMAGE,
        "db_auth": "iam",
    }[name]


def policy(statements: tuple[Statement, ...]) -> Json:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": list(s.actions), "Resource": [resolve(r) for r in s.resources]}
        for s in statements]}


def role(service: str, statements: tuple[Statement, ...], managed: list[str] | None = None,
         metadata: Json | None = None) -> Json:
    properties: Json = {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "least-privilege", "PolicyDocument": policy(statements)}],
    }
    if managed:
        properties["ManagedPolicyArns"] = managed
    out: Json = {"Type": "AWS::IAM::Role", "Properties": properties}
    if metadata:
        out["Metadata"] = metadata
    return out


def _parameters() -> Json:
    return {
        "Environment": {"Type": "String", "AllowedValues": ["dev", "prod"], "Default": "dev",
                        "Description": "dev or prod: prod adds Multi-AZ, deletion protection and a bigger database"},
        "AlertEmail": {"Type": "String", "Description": "Where success and failure notifications and alarms go",
                       "AllowedPattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                       "ConstraintDescription": "an email address"},
        "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "The VPC of the database and the load function"},
        "SubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>",
                      "Description": "Private subnets (two or more zones) with a route to S3 and Secrets Manager"},
        "CreateDatabase": {"Type": "String", "AllowedValues": ["yes", "no"], "Default": "yes",
                           "Description": "yes: create an RDS PostgreSQL instance; no: use ExistingDatabaseSecretArn"},
        "ExistingDatabaseSecretArn": {
            "Type": "String", "Default": "",
            "Description": "With CreateDatabase=no: the Secrets Manager secret of the database "
                           "(JSON with host, port, username, password, dbname)"},
        "RouteTableIds": {"Type": "CommaDelimitedList",
                          "Description": "The route tables of SubnetIds: the S3 gateway endpoint is added to them"},
        "S3PrefixListId": {"Type": "String", "AllowedPattern": "^pl-[0-9a-f]+$",
                           "Description": "The S3 prefix list of the region (aws ec2 describe-managed-prefix-lists "
                                          "--filters Name=prefix-list-name,Values=com.amazonaws.REGION.s3)"},
        "DatabaseSecurityGroupId": {"Type": "String", "Default": "",
                                    "Description": "With CreateDatabase=no: the existing database's security group "
                                                   "(the functions may reach it on 5432 only)"},
        "WaitForMarker": {"Type": "String", "AllowedValues": ["yes", "no"], "Default": "yes",
                          "Description": f"yes: a batch starts when a {MARKER} marker lands in its folder; "
                                         "no: every file starts its own execution"},
    }


def template(model: StackModel) -> Json:
    resources: Json = {}
    resources.update(_key())
    resources.update(_buckets())
    resources.update(_queues(model))
    resources.update(_topic(model))
    resources.update(_chain(model))
    resources.update(_network(model))
    resources.update(_database())
    if model.project.aws.rds_proxy:
        resources.update(_proxy(model))
    resources.update(_functions(model))
    if model.fargate:
        resources.update(_fargate(model))
    resources.update(_schedules(model))
    resources.update(_state_machine(model))
    resources.update(_alarms(model))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"chute pipeline {model.project.name}: S3 -> Step Functions (Lambda) -> PostgreSQL. "
                       "Generated by `chute deploy aws`; edit the project and render again rather than this file.",
        "Metadata": {
            # W1030 checks ExistingDatabaseSecretArn's default ("") against the ARN pattern of the load role's
            # policy; that branch of its Fn::If is taken only with CreateDatabase=no, where the
            # DatabaseSecretGiven rule refuses an empty value. No other finding is ignored.
            "cfn-lint": {"config": {"ignore_checks": ["W1030"]}},
            "chute": {"ignored": {"W1030": "ExistingDatabaseSecretArn is required (Rules) whenever it is used"}},
        },
        "Parameters": {**_parameters(), **({"TaskImageUri": {
            "Type": "String", "Description": "The image the functions run (the one `sam build` pushed), for the "
                                             "ECS Fargate tasks that load the batches' items"}} if model.fargate else {})},
        "Rules": {"DatabaseSecretGiven": {
            "RuleCondition": {"Fn::Equals": [ref("CreateDatabase"), "no"]},
            "Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [ref("ExistingDatabaseSecretArn"), ""]}]},
                            "AssertDescription": "CreateDatabase=no needs ExistingDatabaseSecretArn"},
                           {"Assert": {"Fn::Not": [{"Fn::Equals": [ref("DatabaseSecurityGroupId"), ""]}]},
                            "AssertDescription": "CreateDatabase=no needs DatabaseSecurityGroupId"}]}},
        "Conditions": {"CreateDb": {"Fn::Equals": [ref("CreateDatabase"), "yes"]},
                       "WaitsForMarker": {"Fn::Equals": [ref("WaitForMarker"), "yes"]},
                       "IsProd": {"Fn::Equals": [ref("Environment"), "prod"]}},
        "Resources": resources,
        "Outputs": _outputs(model),
    }


def _key() -> Json:
    service = ["events.amazonaws.com", "sns.amazonaws.com", "cloudwatch.amazonaws.com", "s3.amazonaws.com",
               "states.amazonaws.com", "lambda.amazonaws.com", "sqs.amazonaws.com", "scheduler.amazonaws.com"]
    return {"Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": {
        "Description": sub("chute ${AWS::StackName}: buckets, queues, topic, logs, secret, database"),
        "EnableKeyRotation": True,
        "KeyPolicy": {"Version": "2012-10-17", "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
             "Action": list(KEY_ADMIN_ACTIONS), "Resource": "*"},
            {"Sid": "ServicesUseTheKey", "Effect": "Allow", "Principal": {"Service": service},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}},
            {"Sid": "LogsUseTheKey", "Effect": "Allow", "Principal": {"Service": sub("logs.${AWS::Region}.amazonaws.com")},
             "Action": list(KEY_LOGS_ACTIONS),
             "Resource": "*", "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": sub(
                 "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")}}},
        ]}}}}


def _bucket(notify: bool, lifecycle: list[Json]) -> Json:
    properties: Json = {
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": att("Key", "Arn")},
            "BucketKeyEnabled": True}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LifecycleConfiguration": {"Rules": lifecycle},
    }
    if notify:
        properties["NotificationConfiguration"] = {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    return {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": properties, "Metadata": skip(NO_ACCESS_LOGS, NO_REPLICATION)}


def _tls_only(bucket: str) -> Json:
    return {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": ref(bucket), "PolicyDocument": {
        "Version": "2012-10-17", "Statement": [{
            "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [att(bucket, "Arn"), sub("${" + bucket + ".Arn}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}}


def _buckets() -> Json:
    old_versions = {"Id": "old-versions", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
    staged = {"Id": "staged-datasets", "Status": "Enabled", "Prefix": STAGING_PREFIX, "ExpirationInDays": STAGING_DAYS,
              "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
              "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}
    return {
        "LandingBucket": _bucket(True, [old_versions]),
        "LandingBucketPolicy": _tls_only("LandingBucket"),
        "StagingBucket": _bucket(False, [staged]),
        "StagingBucketPolicy": _tls_only("StagingBucket"),
        "LandingEventsRule": {"Type": "AWS::Events::Rule", "Properties": {
            "Description": "Objects created in the landing bucket -> the events queue",
            # With WaitForMarker=yes only the markers are events: a batch of 7,000 files is one message.
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                             "detail": if_("WaitsForMarker", {"bucket": {"name": [ref("LandingBucket")]},
                                                              "object": {"key": [{"suffix": MARKER}]}},
                                           {"bucket": {"name": [ref("LandingBucket")]}})},
            "Targets": [{"Id": "events-queue", "Arn": att("EventsQueue", "Arn"),
                         "DeadLetterConfig": {"Arn": att("EventsDLQ", "Arn")},
                         "RetryPolicy": {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 86400}}]}},
    }


def _queues(model: StackModel) -> Json:
    out: Json = {}
    for q in model.queues:
        properties: Json = {"KmsMasterKeyId": ref("Key"), "MessageRetentionPeriod": 1209600}
        if q.consumer:
            properties["VisibilityTimeout"] = model.function(q.consumer).timeout_s * 6  # AWS's advice for SQS sources
        if q.dead_letter_queue:
            properties["RedrivePolicy"] = {"deadLetterTargetArn": att(QUEUE_IDS[q.dead_letter_queue], "Arn"),
                                           "maxReceiveCount": q.max_receive_count}
        out[QUEUE_IDS[q.key]] = {"Type": "AWS::SQS::Queue", "Properties": properties}
    out["EventsQueuePolicy"] = {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [ref("EventsQueue"), ref("EventsDLQ")], "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Sid": "EventBridgeSends", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": [att("EventsQueue", "Arn"), att("EventsDLQ", "Arn")],
            "Condition": {"ArnEquals": {"aws:SourceArn": att("LandingEventsRule", "Arn")}}}]}}}
    return out


def _topic(model: StackModel) -> Json:
    return {
        "AlertTopic": {"Type": "AWS::SNS::Topic", "Properties": {
            "DisplayName": sub("chute ${AWS::StackName}"), "KmsMasterKeyId": ref("Key")}},
        # Wake-ups of the stages that follow this project (docs/deploy-aws.md, "Chained stages on AWS"):
        # a name derived from the project, so a follower's stack can subscribe without a lookup.
        "ChainTopic": {"Type": "AWS::SNS::Topic", "Properties": {
            "TopicName": sub(model.chain_topic_name("${Environment}")),
            "DisplayName": sub("chute ${AWS::StackName}: chain wake-ups"), "KmsMasterKeyId": ref("Key")}},
        "AlertSubscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": ref("AlertTopic"), "Protocol": "email", "Endpoint": ref("AlertEmail")}},
    }


def upstream_topic_arn(model: StackModel) -> Json:
    return sub("arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:"
               + model.upstream_topic_name("${Environment}"))


def _chain(model: StackModel) -> Json:
    """A follower's wake-ups: its stage queue subscribes to the upstream's chain topic."""
    if model.upstream is None:
        return {}
    topic = upstream_topic_arn(model)
    return {
        "StageQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [ref("StageQueue")], "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "UpstreamChainTopicSends", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": att("StageQueue", "Arn"),
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]}}},
        "UpstreamSubscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": topic, "Protocol": "sqs", "Endpoint": att("StageQueue", "Arn"),
            "RawMessageDelivery": True}},
    }


def _network(model: StackModel) -> Json:
    """The functions' network: out only to the database (its, or its proxy's, security group), the
    VPC endpoints of Secrets Manager (interface) and S3 (gateway, through its prefix list), and for
    Fargate tasks those of ECR and CloudWatch Logs. No 0.0.0.0/0, except for a chained stage's
    extractions (ExtractSecurityGroup: HTTP APIs are on the internet, through a NAT)."""
    interfaces = ["secretsmanager"] + (["ecr.api", "ecr.dkr", "logs"] if model.fargate else [])
    database = ref("ProxySecurityGroup") if model.project.aws.rds_proxy else ref("DbSecurityGroup")
    out: Json = {
        "LoadSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "chute functions in the VPC: out to PostgreSQL and the VPC endpoints only",
            "VpcId": ref("VpcId"),
            # Inline, so that AWS's default allow-all egress is replaced; the rules that name other
            # groups are resources of their own (groups naming each other inline would be a cycle).
            "SecurityGroupEgress": [
                {"Description": "S3 (the gateway endpoint's prefix list)", "IpProtocol": "tcp", "FromPort": 443,
                 "ToPort": 443, "DestinationPrefixListId": ref("S3PrefixListId")}]}},
        "LoadEgressEndpoints": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
            "GroupId": ref("LoadSecurityGroup"), "Description": "the interface endpoints (Secrets Manager)",
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "DestinationSecurityGroupId": ref("EndpointSecurityGroup")}},
        "LoadEgressDatabase": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
            "GroupId": ref("LoadSecurityGroup"), "Description": "PostgreSQL", "IpProtocol": "tcp",
            "FromPort": 5432, "ToPort": 5432,
            "DestinationSecurityGroupId": if_("CreateDb", database, ref("DatabaseSecurityGroupId"))}},
        "EndpointSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "chute VPC interface endpoints: HTTPS from the functions",
            "VpcId": ref("VpcId"),
            "SecurityGroupEgress": [{"Description": "nothing out (endpoints only answer)", "IpProtocol": "icmp",
                                     "FromPort": -1, "ToPort": -1, "CidrIp": "127.0.0.1/32"}]}},
        "EndpointIngress": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
            "GroupId": ref("EndpointSecurityGroup"), "Description": "HTTPS from the functions", "IpProtocol": "tcp",
            "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": ref("LoadSecurityGroup")}},
        "S3Endpoint": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {
            "VpcId": ref("VpcId"), "VpcEndpointType": "Gateway", "RouteTableIds": ref("RouteTableIds"),
            "ServiceName": sub("com.amazonaws.${AWS::Region}.s3")}},
    }
    for service in interfaces:
        out[logical_id(service) + "Endpoint"] = {"Type": "AWS::EC2::VPCEndpoint", "Properties": {
            "VpcId": ref("VpcId"), "VpcEndpointType": "Interface", "PrivateDnsEnabled": True,
            "SubnetIds": ref("SubnetIds"), "SecurityGroupIds": [ref("EndpointSecurityGroup")],
            "ServiceName": sub("com.amazonaws.${AWS::Region}." + service)}}
    if model.upstream is not None or model.schedules:
        out["ExtractSecurityGroup"] = {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "chute stage function: the HTTP APIs it extracts from and the chain topic (HTTPS)",
            "VpcId": ref("VpcId"),
            "SecurityGroupEgress": [{"Description": "HTTPS to the extraction's API and SNS (through a NAT)",
                                     "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}]}}
    return out


def _database() -> Json:
    secret = "{{resolve:secretsmanager:${DbSecret}:SecretString:%s}}"
    return {
        "DbSecret": {"Type": "AWS::SecretsManager::Secret", "Condition": "CreateDb", "Properties": {
            "Description": sub("chute ${AWS::StackName}: PostgreSQL credentials (generated, never in the template)"),
            "KmsKeyId": ref("Key"),
            "GenerateSecretString": {"SecretStringTemplate": '{"username": "chute", "dbname": "chute"}',
                                     "GenerateStringKey": "password", "PasswordLength": 32,
                                     "ExcludeCharacters": "\"@/\\' "}},
            "Metadata": skip(("CKV_AWS_304", "rotation needs a rotation function in the VPC; rotate with "
                                             "`aws secretsmanager rotate-secret` and the RDS rotation template"))},
        "DbSecretAttachment": {"Type": "AWS::SecretsManager::SecretTargetAttachment", "Condition": "CreateDb",
                               "Properties": {"SecretId": ref("DbSecret"), "TargetId": ref("Database"),
                                              "TargetType": "AWS::RDS::DBInstance"}},
        "DbSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Condition": "CreateDb", "Properties": {
            "GroupDescription": "chute database: PostgreSQL from the load function only", "VpcId": ref("VpcId"),
            "SecurityGroupIngress": [{"Description": "PostgreSQL from the load function", "IpProtocol": "tcp",
                                      "FromPort": 5432, "ToPort": 5432,
                                      "SourceSecurityGroupId": ref("LoadSecurityGroup")}]}},
        "DbSubnetGroup": {"Type": "AWS::RDS::DBSubnetGroup", "Condition": "CreateDb", "Properties": {
            "DBSubnetGroupDescription": "chute database subnets (private)", "SubnetIds": ref("SubnetIds")}},
        "Database": {"Type": "AWS::RDS::DBInstance", "Condition": "CreateDb",
                     "DeletionPolicy": "Snapshot", "UpdateReplacePolicy": "Snapshot", "Properties": {
                         "Engine": "postgres", "EngineVersion": "17.6",
                         "DBInstanceClass": if_("IsProd", "db.t4g.medium", "db.t4g.micro"),
                         "AllocatedStorage": "20", "MaxAllocatedStorage": 200, "StorageType": "gp3",
                         "DBName": "chute",
                         "MasterUsername": sub(secret % "username"), "MasterUserPassword": sub(secret % "password"),
                         "DBSubnetGroupName": ref("DbSubnetGroup"),
                         "VPCSecurityGroups": [ref("DbSecurityGroup")],
                         "PubliclyAccessible": False, "StorageEncrypted": True, "KmsKeyId": ref("Key"),
                         "BackupRetentionPeriod": if_("IsProd", 14, 7), "CopyTagsToSnapshot": True,
                         "MultiAZ": if_("IsProd", True, False), "DeletionProtection": if_("IsProd", True, False),
                         "AutoMinorVersionUpgrade": True, "EnableIAMDatabaseAuthentication": True,
                         "EnableCloudwatchLogsExports": ["postgresql", "upgrade"],
                         "EnablePerformanceInsights": True, "PerformanceInsightsKMSKeyId": ref("Key"),
                         "MonitoringInterval": 60, "MonitoringRoleArn": att("DbMonitoringRole", "Arn")},
                     "Metadata": skip(("CKV_AWS_157", "Multi-AZ is on when Environment=prod (Fn::If)"),
                                      ("CKV_AWS_293", "deletion protection is on when Environment=prod (Fn::If)"))},
        "DbMonitoringRole": {"Type": "AWS::IAM::Role", "Condition": "CreateDb", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                "Action": "sts:AssumeRole"}]},
            # AmazonRDSEnhancedMonitoringRole, written out: the RDSOSMetrics log group only.
            "Policies": [{"PolicyName": "enhanced-monitoring", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
                 "Resource": sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:RDS*")},
                {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
                                               "logs:GetLogEvents"],
                 "Resource": sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                                 "log-group:RDS*:log-stream:*")}]}}]}},
    }


def _proxy(model: StackModel) -> Json:
    """An RDS Proxy in front of the created database: the children's many short connections are
    pooled (COPY and advisory locks pin a session: the proxy absorbs connection storms, it does
    not multiplex loads)."""
    iam = model.project.aws.database_auth == "iam"
    return {
        "ProxyRole": {**role("rds.amazonaws.com", (Statement(("secretsmanager:GetSecretValue",), ("created_db_secret",)),
                                                   Statement(("kms:Decrypt",), ("key",)))), "Condition": "CreateDb"},
        "ProxySecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Condition": "CreateDb", "Properties": {
            "GroupDescription": "chute RDS Proxy: PostgreSQL from the functions, to the database",
            "VpcId": ref("VpcId"),
            "SecurityGroupIngress": [{"Description": "PostgreSQL from the functions", "IpProtocol": "tcp",
                                      "FromPort": 5432, "ToPort": 5432,
                                      "SourceSecurityGroupId": ref("LoadSecurityGroup")}],
            "SecurityGroupEgress": [{"Description": "PostgreSQL to the database", "IpProtocol": "tcp",
                                     "FromPort": 5432, "ToPort": 5432,
                                     "DestinationSecurityGroupId": ref("DbSecurityGroup")}]}},
        "DbIngressFromProxy": {"Type": "AWS::EC2::SecurityGroupIngress", "Condition": "CreateDb", "Properties": {
            "GroupId": ref("DbSecurityGroup"), "Description": "PostgreSQL from the RDS Proxy", "IpProtocol": "tcp",
            "FromPort": 5432, "ToPort": 5432, "SourceSecurityGroupId": ref("ProxySecurityGroup")}},
        "DatabaseProxy": {"Type": "AWS::RDS::DBProxy", "Condition": "CreateDb", "Properties": {
            "DBProxyName": sub("${AWS::StackName}-proxy"), "EngineFamily": "POSTGRESQL", "RequireTLS": True,
            "Auth": [{"AuthScheme": "SECRETS", "SecretArn": ref("DbSecret"),
                      "IAMAuth": "REQUIRED" if iam else "DISABLED"}],
            "RoleArn": att("ProxyRole", "Arn"), "VpcSubnetIds": ref("SubnetIds"),
            "VpcSecurityGroupIds": [ref("ProxySecurityGroup")]}},
        "DatabaseProxyTargets": {"Type": "AWS::RDS::DBProxyTargetGroup", "Condition": "CreateDb", "Properties": {
            "DBProxyName": ref("DatabaseProxy"), "TargetGroupName": "default",
            "DBInstanceIdentifiers": [ref("Database")]}},
    }


def _fargate(model: StackModel) -> Json:
    """The batches' items as ECS Fargate tasks of the functions' image ([aws] load_runner = "fargate")."""
    settings = model.project.aws
    env = [{"Name": ENVIRONMENT[e], "Value": environment(e)} for e in model.task_environment()]
    return {
        "TaskCluster": {"Type": "AWS::ECS::Cluster", "Properties": {
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}},
        "TaskLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": sub("/aws/ecs/${AWS::StackName}-load"), "RetentionInDays": LOG_RETENTION_DAYS,
            "KmsKeyId": att("Key", "Arn")}},
        "TaskRole": role("ecs-tasks.amazonaws.com", model.task_statements()),
        "TaskExecutionRole": role("ecs-tasks.amazonaws.com", TASK_EXECUTION_STATEMENTS),
        "TaskDefinition": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc",
            "Cpu": str(settings.fargate_cpu), "Memory": str(settings.fargate_memory_mb),
            "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
            "ExecutionRoleArn": att("TaskExecutionRole", "Arn"), "TaskRoleArn": att("TaskRole", "Arn"),
            "Volumes": [{"Name": "tmp"}],
            "ContainerDefinitions": [{
                "Name": "chute", "Image": ref("TaskImageUri"), "Essential": True,
                # The Lambda base image's entry point is /lambda-entrypoint.sh: run the task module instead.
                "EntryPoint": ["python3", "-m", "chute.deploy.aws.task"],
                "ReadonlyRootFilesystem": True, "MountPoints": [{"SourceVolume": "tmp", "ContainerPath": "/tmp"}],
                "Environment": env,
                "LogConfiguration": {"LogDriver": "awslogs", "Options": {
                    "awslogs-group": ref("TaskLogGroup"), "awslogs-region": ref("AWS::Region"),
                    "awslogs-stream-prefix": "chute"}}}]}},
    }


def _schedules(model: StackModel) -> Json:
    """Each scheduled extraction: an EventBridge Scheduler schedule -> the extract function, which
    writes into the landing bucket and puts each folder's .SUCCESS marker (the load path)."""
    out: Json = {"SchedulerRole": {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}}]},
        "Policies": [{"PolicyName": "least-privilege",
                      "PolicyDocument": policy(scheduler_statements(bool(model.schedules)))}]}},
        # Late files (after their folder's marker): the trigger's hourly sweep (docs/deploy-aws.md).
        "SweepLateFilesSchedule": {"Type": "AWS::Scheduler::Schedule", "Properties": {
            "Description": "chute: files that landed after their folder's marker",
            "ScheduleExpression": SWEEP_SCHEDULE,
            "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED", "KmsKeyArn": att("Key", "Arn"),
            "Target": {"Arn": att("TriggerFunction", "Arn"), "RoleArn": att("SchedulerRole", "Arn"),
                       "Input": SWEEP_INPUT,
                       "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                       "DeadLetterConfig": {"Arn": att("FunctionsDLQ", "Arn")}}}}}
    for spec in model.schedules:
        out[spec.key + "Schedule"] = {"Type": "AWS::Scheduler::Schedule", "Properties": {
            "Description": f"chute: {spec.name} on {spec.cron} (UTC)",
            "ScheduleExpression": spec.expression, "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED", "KmsKeyArn": att("Key", "Arn"),
            "Target": {"Arn": att("ExtractFunction", "Arn"), "RoleArn": att("SchedulerRole", "Arn"),
                       "Input": spec.input,
                       "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                       "DeadLetterConfig": {"Arn": att("FunctionsDLQ", "Arn")}}}}
    return out


def _functions(model: StackModel) -> Json:
    out: Json = {}
    for f in model.functions:
        name = f"{f.key.capitalize()}"
        out[f"{name}LogGroup"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": sub("/aws/lambda/${AWS::StackName}-" + f.key),
            "RetentionInDays": LOG_RETENTION_DAYS, "KmsKeyId": att("Key", "Arn")}}
        out[f"{name}Role"] = role("lambda.amazonaws.com", f.statements)
        properties: Json = {
            "FunctionName": sub("${AWS::StackName}-" + f.key),
            "Description": f.description,
            "PackageType": "Image",
            "ImageConfig": {"Command": [f.command]},
            "Architectures": ["x86_64"],
            "MemorySize": f.memory_mb, "Timeout": f.timeout_s,
            "Role": att(f"{name}Role", "Arn"),
            "Tracing": "Active",
            "ReservedConcurrentExecutions": f.reserved_concurrency,
            "KmsKeyArn": att("Key", "Arn"),
            "LoggingConfig": {"LogGroup": ref(f"{name}LogGroup")},
            "Environment": {"Variables": {ENVIRONMENT[e]: environment(e) for e in f.environment}},
        }
        metadata: Json = {"DockerTag": "chute", "DockerContext": ".", "Dockerfile": "Dockerfile"}
        skipped: list[tuple[str, str]] = []
        if f.asynchronous:
            properties["DeadLetterQueue"] = {"Type": "SQS", "TargetArn": att("FunctionsDLQ", "Arn")}
        else:
            skipped.append(NO_DLQ)
        if f.in_vpc:
            groups = [ref("LoadSecurityGroup")] + ([ref("ExtractSecurityGroup")] if f.key in ("stage", "extract") else [])
            properties["VpcConfig"] = {"SecurityGroupIds": groups, "SubnetIds": ref("SubnetIds")}
        else:
            skipped.append(("CKV_AWS_117", "this function calls only AWS APIs (S3, SQS, SNS, Step Functions); "
                                           "only the load function needs the VPC, to reach the database"))
        if skipped:
            metadata.update(skip(*skipped))
        from_sqs = {"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "ScalingConfig": {"MaximumConcurrency": f.event_source_concurrency}}
        if f.key == "trigger":
            properties["Events"] = {"LandingEvents": {"Type": "SQS", "Properties": {
                "Queue": att("EventsQueue", "Arn"), **from_sqs}}}
        if f.key == "stage":
            properties["Events"] = {
                "Wakeups": {"Type": "SQS", "Properties": {"Queue": att("StageQueue", "Arn"), **from_sqs}},
                # The sweeper: messages in backoff, or whose wake-up was lost, are taken within minutes.
                "Sweep": {"Type": "Schedule", "Properties": {
                    "Schedule": f"rate({SWEEP_MINUTES} minutes)", "Input": '{"sweep": true}',
                    "Description": "chute: run the stage even without a wake-up"}},
            }
        out[f"{name}Function"] = {"Type": "AWS::Serverless::Function", "Properties": properties, "Metadata": metadata}
    return out


def _state_machine(model: StackModel) -> Json:
    placeholders = model.placeholders
    substitutions = {PLACEHOLDERS[k][2:-1]: att(k.capitalize() + "Function", "Arn") for k in ("node", "load", "notify")}
    substitutions["StagingBucketName"] = ref("StagingBucket")
    if model.fargate:
        substitutions.update(TaskClusterArn=att("TaskCluster", "Arn"), TaskDefinitionArn=ref("TaskDefinition"),
                             SubnetList={"Fn::Join": [",", ref("SubnetIds")]},
                             TaskSecurityGroup=ref("LoadSecurityGroup"))
    return {
        # An execution that fails at a step (not with ChuteFilesFailed, which NotifyFailure reported):
        # its notification, asynchronously, with the function DLQ behind it.
        "ExecutionStatusRule": {"Type": "AWS::Events::Rule", "Properties": {
            "Description": "Pipeline executions that failed, timed out or were aborted -> the notify function",
            "EventPattern": {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                             "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"],
                                        "stateMachineArn": [ref("PipelineStateMachine")]}},
            "Targets": [{"Id": "notify", "Arn": att("NotifyFunction", "Arn"),
                         "DeadLetterConfig": {"Arn": att("FunctionsDLQ", "Arn")},
                         "RetryPolicy": {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 86400}}]}},
        "ExecutionStatusPermission": {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": ref("NotifyFunction"), "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com", "SourceArn": att("ExecutionStatusRule", "Arn")}},
        "FunctionsDLQPolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [ref("FunctionsDLQ")], "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "ExecutionStatusRuleDeadLetters", "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": att("FunctionsDLQ", "Arn"),
                "Condition": {"ArnEquals": {"aws:SourceArn": att("ExecutionStatusRule", "Arn")}}}]}}},
        "StateMachineLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": sub("/aws/vendedlogs/states/${AWS::StackName}-pipeline"),
            "RetentionInDays": LOG_RETENTION_DAYS, "KmsKeyId": att("Key", "Arn")}},
        "StateMachineRole": role("states.amazonaws.com", model.state_machine_statements()),
        "PipelineStateMachine": {"Type": "AWS::Serverless::StateMachine", "Properties": {
            "Name": sub("${AWS::StackName}-pipeline"),
            "Type": "STANDARD",  # exactly-once execution names; Express would allow duplicates
            "Definition": model.definition(placeholders),
            "DefinitionSubstitutions": substitutions,
            "Role": att("StateMachineRole", "Arn"),
            "Tracing": {"Enabled": True},
            "Logging": {"Level": "ERROR", "IncludeExecutionData": True,  # payloads: keys, counts, errors
                        "Destinations": [{"CloudWatchLogsLogGroup": {
                            "LogGroupArn": att("StateMachineLogGroup", "Arn")}}]}}},
    }


def _alarm_dimension(resource: str) -> Any:
    if resource.startswith("function:"):
        return ref(resource.split(":")[1].capitalize() + "Function")
    return resolve(resource)


def _alarms(model: StackModel) -> Json:
    out: Json = {}
    for a in model.alarms:
        out[logical_id(a.key) + "Alarm"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmDescription": sub("chute ${AWS::StackName}: " + a.description),
            "Namespace": a.namespace, "MetricName": a.metric, "Statistic": a.statistic,
            "Dimensions": [{"Name": a.dimension[0], "Value": _alarm_dimension(a.dimension[1])}],
            "Period": 300, "EvaluationPeriods": 1, "Threshold": a.threshold,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
            "AlarmActions": [ref("AlertTopic")]}}
    return out


def _outputs(model: StackModel) -> Json:
    stage = {} if model.upstream is None else {
        "StageQueueUrl": {"Description": f"Wake-ups of this stage (from {model.upstream})", "Value": ref("StageQueue")},
        "StageDLQUrl": {"Description": "Wake-ups the stage failed on", "Value": ref("StageDLQ")},
    }
    return {
        "ChainTopicArn": {"Description": "Wake-ups of the stages that follow this project", "Value": ref("ChainTopic")},
        **stage,
        "LandingBucketName": {"Description": "Upload files (and .SUCCESS markers) here", "Value": ref("LandingBucket")},
        "StateMachineArn": {"Description": "The pipeline", "Value": ref("PipelineStateMachine")},
        "AlertTopicArn": {"Description": "Notifications and alarms", "Value": ref("AlertTopic")},
        "FailedRunsQueueUrl": {"Description": "Batches whose run failed", "Value": ref("FailedRunsQueue")},
        "LoadSecurityGroupId": {"Description": "Allow this group into an existing database on 5432",
                                "Value": ref("LoadSecurityGroup")},
        "DatabaseSecretArn": {"Description": "Credentials of the database", "Value": resolve("db_secret")},
    }
