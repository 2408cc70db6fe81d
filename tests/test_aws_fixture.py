"""The moto fixture: boto3 reaches moto's server through the standard environment variables."""

import boto3


def test_boto3_default_client_reaches_moto(aws, s3_bucket):
    s3 = boto3.client("s3")  # no endpoint given: AWS_ENDPOINT_URL from the environment
    s3.put_object(Bucket=s3_bucket, Key="a/b.csv", Body=b"x,y\n1,2\n")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]] == ["a/b.csv"]


def test_each_test_starts_from_an_empty_moto(aws):
    assert aws.client("s3").list_buckets()["Buckets"] == []
