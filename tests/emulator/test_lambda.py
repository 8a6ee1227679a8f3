"""Lambda through our Docker-free executor: every integration the labs rely on."""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.request
import zipfile

import pytest

HANDLER = """
import json, os, time
import boto3

def handler(event, context):
    print("event:", json.dumps(event, sort_keys=True))
    action = event.get("action") if isinstance(event, dict) else None
    if action == "fail":
        raise ValueError("asked to fail")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(7)
    if action == "tables":
        return boto3.client("dynamodb").list_tables()["TableNames"]
    if action == "put":
        boto3.client("dynamodb").put_item(TableName=event["table"], Item={"pk": {"S": event["key"]}})
    if "Records" in event:  # SQS or S3 notifications: record what arrived
        for record in event["Records"]:
            key = record.get("body") or record["s3"]["object"]["key"]
            boto3.client("dynamodb").put_item(TableName=os.environ["TABLE"], Item={"pk": {"S": key}})
    if "httpMethod" in event:  # API Gateway proxy integration
        return {"statusCode": 200, "body": json.dumps({"path": event["path"], "v": os.environ.get("GREETING")})}
    return {"greeting": os.environ.get("GREETING"), "version": context.function_version,
            "remaining_ok": context.get_remaining_time_in_millis() > 0}
"""


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def wait_for(predicate, timeout=30.0, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
def lam(aws):
    return aws.client("lambda")


@pytest.fixture
def table(aws):
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName="seen",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "seen"


def keys(aws, table):
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    return {item["pk"]["S"] for item in items}


@pytest.fixture
def function(lam, account_id, table):
    def create(name="fn", timeout=3, **extra):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=f"arn:aws:iam::{account_id}:role/lambda-role",
            Handler="app.handler",
            Code={"ZipFile": zipped({"app.py": HANDLER})},
            Timeout=timeout,
            Environment={"Variables": {"GREETING": "hello", "TABLE": table}},
            **extra,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return name

    return create


def invoke(lam, name, event, **kwargs):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    return response, json.loads(response["Payload"].read())


def test_sync_invoke_with_environment_and_logs(lam, function):
    name = function()
    response, body = invoke(lam, name, {"x": 1}, LogType="Tail")
    assert "FunctionError" not in response
    assert body == {"greeting": "hello", "version": "$LATEST", "remaining_ok": True}
    tail = base64.b64decode(response["LogResult"]).decode()
    assert 'event: {"x": 1}' in tail and "REPORT RequestId" in tail


def test_function_output_reaches_cloudwatch_logs(aws, lam, function):
    name = function()
    invoke(lam, name, {"marker": "find-me"})
    logs = aws.client("logs")

    def messages():
        try:  # log delivery is asynchronous: the group may not exist yet
            streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        events = [
            e["message"]
            for s in streams
            for e in logs.get_log_events(
                logGroupName=f"/aws/lambda/{name}", logStreamName=s["logStreamName"]
            )["events"]
        ]
        return [m for m in events if "find-me" in m]

    assert wait_for(messages)


def test_unhandled_error_has_aws_shape(lam, function):
    name = function()
    response, body = invoke(lam, name, {"action": "fail"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "asked to fail"
    assert body["stackTrace"]


def test_timeout_is_enforced_and_environment_recovers(lam, function):
    name = function(timeout=1)
    started = time.monotonic()
    response, body = invoke(lam, name, {"action": "sleep", "seconds": 30})
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    response, body = invoke(lam, name, {})
    assert "FunctionError" not in response and body["greeting"] == "hello"


def test_crashing_runtime_is_reported(lam, function):
    name = function()
    response, body = invoke(lam, name, {"action": "exit"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError" and "exit status 7" in body["errorMessage"]


def test_boto3_inside_function_reaches_its_own_account(aws, lam, function, table):
    name = function()
    _, body = invoke(lam, name, {"action": "tables"})
    assert body == [table]


def test_async_invoke_runs(aws, lam, function, table):
    name = function()
    response = lam.invoke(
        FunctionName=name,
        InvocationType="Event",
        Payload=json.dumps({"action": "put", "table": table, "key": "async"}).encode(),
    )
    assert response["StatusCode"] == 202
    wait_for(lambda: "async" in keys(aws, table))


def test_async_invoke_with_destinations(aws, lam, function, table):
    name = function()
    sqs = aws.client("sqs")
    arns = {}
    for outcome in ("ok", "failed"):
        url = sqs.create_queue(QueueName=f"{name}-{outcome}")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        arns[outcome] = (url, attributes["Attributes"]["QueueArn"])
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={
            "OnSuccess": {"Destination": arns["ok"][1]},
            "OnFailure": {"Destination": arns["failed"][1]},
        },
    )
    for event in ({"action": "put", "table": table, "key": "destined"}, {"action": "fail"}):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())

    def record(outcome):
        messages = sqs.receive_message(QueueUrl=arns[outcome][0], WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    succeeded = wait_for(lambda: record("ok"), timeout=60)[0]
    assert succeeded["requestContext"]["condition"] == "Success"
    assert "destined" in keys(aws, table)
    failed = wait_for(lambda: record("failed"), timeout=60)[0]
    assert failed["responsePayload"]["errorMessage"] == "asked to fail"


def test_versions_and_aliases(lam, function):
    name = function()
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    _, body = invoke(lam, f"{name}:live", {})
    assert body["version"] == version


def test_layers_are_importable(lam, account_id):
    layer = lam.publish_layer_version(
        LayerName="shared",
        Content={"ZipFile": zipped({"python/shared_util.py": "WORD = 'from-layer'\n"})},
        CompatibleRuntimes=["python3.12"],
    )
    lam.create_function(
        FunctionName="layered",
        Runtime="python3.12",
        Role=f"arn:aws:iam::{account_id}:role/r",
        Handler="app.handler",
        Code={
            "ZipFile": zipped(
                {"app.py": "import shared_util\ndef handler(e, c):\n    return shared_util.WORD\n"}
            )
        },
        Layers=[layer["LayerVersionArn"]],
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="layered")
    _, body = invoke(lam, "layered", {})
    assert body == "from-layer"


def test_sqs_event_source_mapping(aws, lam, function, table):
    name = function()
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=5)
    sqs.send_message(QueueUrl=url, MessageBody="job-1")
    wait_for(lambda: "job-1" in keys(aws, table), timeout=60)


def test_s3_notification_invokes_function(aws, lam, function, table, account_id):
    name = function()
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    s3 = aws.client("s3")
    bucket = f"uploads-{account_id}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"1,2")
    wait_for(lambda: "report.csv" in keys(aws, table))


def test_api_gateway_proxy_integration(aws, lam, function, endpoint_url, account_id):
    name = function()
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    apigw = aws.client("apigateway")
    api = apigw.create_rest_api(name="api")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    resource = apigw.create_resource(restApiId=api, parentId=root, pathPart="hello")["id"]
    apigw.put_method(restApiId=api, resourceId=resource, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api,
        resourceId=resource,
        httpMethod="GET",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations",
    )
    apigw.create_deployment(restApiId=api, stageName="dev")
    url = f"{endpoint_url}/_aws/execute-api/{api}/dev/hello"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"path": "/hello", "v": "hello"}


def test_step_functions_task_calls_lambda(aws, lam, function, account_id):
    name = function()
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    sfn = aws.client("stepfunctions")
    definition = {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": arn, "End": True}},
    }
    machine = sfn.create_state_machine(
        name="flow",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{account_id}:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"k": 1}))

    def finished():
        result = sfn.describe_execution(executionArn=execution["executionArn"])
        return result if result["status"] != "RUNNING" else None

    result = wait_for(finished)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["greeting"] == "hello"
