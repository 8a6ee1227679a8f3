"""Accounts are isolated: the grader gives every submission its own account id."""

from __future__ import annotations

import pytest

from grader.statecheck import session_for
from tests.conftest import new_account_id


@pytest.fixture
def other(endpoint_url):
    return session_for(endpoint_url=endpoint_url, account_id=new_account_id())


def test_sqs_queues_are_per_account(aws, other):
    aws.client("sqs").create_queue(QueueName="private-queue")
    assert "QueueUrls" not in other.client("sqs").list_queues(QueueNamePrefix="private")


def test_s3_buckets_are_listed_per_account(aws, other, account_id):
    aws.client("s3").create_bucket(Bucket=f"mine-{account_id}")
    assert other.client("s3").list_buckets()["Buckets"] == []


def test_ec2_vpcs_are_per_account(aws, other):
    vpc = aws.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    assert vpc not in {v["VpcId"] for v in other.client("ec2").describe_vpcs()["Vpcs"]}


def test_dynamodb_tables_are_per_account(aws, other):
    aws.client("dynamodb").create_table(
        TableName="secret",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert other.client("dynamodb").list_tables()["TableNames"] == []


def test_elbv2_and_lambda_are_per_account(aws, other, account_id):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    aws.client("elbv2").create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=vpc)
    assert other.client("elbv2").describe_target_groups()["TargetGroups"] == []
