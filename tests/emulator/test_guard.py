"""The request guard (emulator/cloudlabs_emulator/guard.py): whatever a student sends, the shared
emulator stays up, its internals stay the grader's, and one account cannot reach another's
resources, even when it knows their names, URLs or ARNs."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import pytest
from botocore.exceptions import ClientError

from grader import emulator as emu
from grader.statecheck import session_for
from tests.conftest import new_account_id

REFUSAL = "cloudlabs: this endpoint is for the grader only"
INTERNAL_ACCOUNT = "949334387222"  # LocalStack's INTERNAL_RESOURCE_ACCOUNT
LAMBDA_BUCKET = "awslambda-us-east-1-tasks"


@pytest.fixture(autouse=True)
def _guarded(emulator):
    if emulator.admin_token is None:
        pytest.skip("the external backend has no guard")


@pytest.fixture
def token(emulator) -> str:
    return emulator.admin_token


@pytest.fixture
def other(endpoint_url):
    """Account B: another student who knows account A's (the ``aws`` fixture's) names."""
    return session_for(endpoint_url=endpoint_url, account_id=new_account_id())


def http(method, url, *, body=None, headers=None):
    """(status, body) of one plain HTTP request; never raises on 4xx/5xx."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def as_admin(client, token):
    """The same client, its requests marked as the grader's."""
    client.meta.events.register(
        "before-sign.*.*", lambda request, **_: request.headers.__setitem__(emu.ADMIN_HEADER, token)
    )
    return client


def sigv4_header(account_id: str, service: str) -> dict[str, str]:
    """An Authorization header naming ``account_id`` (LocalStack checks no signature)."""
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={account_id}/20250101/us-east-1/"
        f"{service}/aws4_request, SignedHeaders=host, Signature=0"
    }


def refused(call, code="AccessDenied"):
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] == code, info.value.response["Error"]
    return info.value.response["Error"].get("Message", "")


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


# -- internal endpoints ----------------------------------------------------------------------

INTERNAL_REQUESTS = [
    ("PUT", "/_localstack/health", b'{"services": {"s3": "error"}}'),
    ("POST", "/_localstack/health", b'{"features": {"x": 1}}'),
    ("DELETE", "/_localstack/health", None),
    ("GET", "/_localstack/info", None),
    ("GET", "/_localstack/plugins", None),
    ("GET", "/_localstack/init", None),
    ("GET", "/_localstack/init/READY", None),
    ("GET", "/_localstack/swagger", None),
    ("GET", "/_localstack/config", None),
    ("GET", "/_localstack/diagnose", None),
    ("GET", "/_localstack/nothing-here", None),
    ("GET", "//_localstack/info", None),
    ("GET", "/_localstack//info", None),
    ("GET", "/%5Flocalstack/info", None),
    ("GET", "/openapi.yaml", None),
    ("GET", "/_aws/cloudwatch/metrics/raw", None),
    ("GET", "/_aws/sqs/messages", None),
    ("GET", "/_aws/sqs/messages/us-east-1/000000000000/q", None),
    ("GET", "/_aws/ses", None),
    ("DELETE", "/_aws/ses", None),
    ("GET", "/_aws/sns/sms-messages", None),
    ("GET", "/_aws/sns/platform-endpoint-messages", None),
    ("GET", "/_aws/sns/subscription-tokens/arn:aws:sns:us-east-1:000000000000:t:x", None),
    ("POST", "/_aws/sns/phone-opt-outs", b""),
    ("GET", "/_aws/lambda/runtimes", None),
    ("GET", "/_aws/lambda/init", None),
    ("GET", "/_aws/anything-new", None),
    ("POST", "/moto-api/reset", b""),
    ("GET", "/moto-api/data.json", None),
    ("GET", "/_extension/some-extension", None),
    ("GET", "/_pods/state", None),
    ("GET", "/_localstack_lambda/some-executor/2018-06-01/runtime/invocation/next", None),
    ("GET", "/_cloudlabs/instance", None),
    ("GET", "/_cloudlabs/routes", None),
]


@pytest.mark.parametrize(("method", "path", "body"), INTERNAL_REQUESTS)
def test_internal_endpoints_are_refused_to_students(endpoint_url, method, path, body):
    status, text = http(method, endpoint_url + path, body=body)
    assert status == 403, (status, text[:200])
    assert json.loads(text) == {"message": REFUSAL}


@pytest.mark.parametrize(
    "path", ["/_localstack/info", "/_aws/cloudwatch/metrics/raw", "/_localstack/plugins"]
)
def test_the_grader_reaches_them_with_the_token(aws, endpoint_url, token, path):
    aws.client("cloudwatch").list_metrics()  # CloudWatch adds its route once it is loaded
    status, _ = http("GET", endpoint_url + path, headers={emu.ADMIN_HEADER: token})
    assert status == 200


def test_a_wrong_token_is_a_students(endpoint_url, token):
    status, _ = http("GET", f"{endpoint_url}/_localstack/info", headers={emu.ADMIN_HEADER: "x"})
    assert status == 403
    assert emu.instance_id(endpoint_url, token=token[:-1] + "?") is None


def test_health_reads_stay_open(endpoint_url):
    assert http("HEAD", f"{endpoint_url}/_localstack/health")[0] == 200
    status, text = http("GET", f"{endpoint_url}/_localstack/health")
    assert status == 200 and json.loads(text)["version"] == "2026.3.0"
    assert emu.health(endpoint_url)["version"] == "2026.3.0"  # callers without a token


def test_a_student_cannot_poison_health(emulator, endpoint_url, token):
    before = emu.health(endpoint_url, token=token)
    poison = json.dumps({"services": {"s3": "error"}, "version": "broken"}).encode()
    for method in ("PUT", "POST"):
        assert http(method, f"{endpoint_url}/_localstack/health", body=poison)[0] == 403
    after = emu.health(endpoint_url, token=token)
    assert after["version"] == before["version"] == "2026.3.0"
    assert after["services"]["s3"] != "error"
    assert emulator.status().running


def test_every_route_is_classified(endpoint_url, token):
    """A route (or chain handler) that a new LocalStack or a newly loaded service adds fails here
    until it is classified in emulator/cloudlabs_emulator/routes.py."""
    status, text = http(
        "GET", f"{endpoint_url}/_cloudlabs/routes?load=all", headers={emu.ADMIN_HEADER: token}
    )
    assert status == 200
    routes = json.loads(text)["routes"]
    unclassified = [
        f"{r['router']}: {r['key']} ({r['module']})"
        for r in routes
        if r["access"] == "unclassified"
    ]
    assert not unclassified, "classify these routes:\n" + "\n".join(unclassified)
    by_key = {r["key"]: r["access"] for r in routes}
    assert by_key["/_aws/cloudwatch/metrics/raw"] == "admin"
    assert by_key["/_localstack/health"] == "health"
    assert by_key["/restapis/<api_id>/<stage>/_user_request_/<greedy_path:path>"] == "public"


def test_instance_id_is_the_graders_and_stable(emulator, endpoint_url, token):
    instance = emulator.instance_id()
    assert isinstance(instance, str) and len(instance) >= 16
    assert emu.instance_id(endpoint_url, token=token) == instance == emulator.instance_id()
    assert emulator.status().instance == instance
    status, text = http(
        "GET", f"{endpoint_url}/_cloudlabs/instance", headers={emu.ADMIN_HEADER: token}
    )
    document = json.loads(text)
    assert status == 200 and document["instance"] == instance
    assert document["pid"] == emulator.status().pid
    assert emu.instance_id(endpoint_url, token=None) is None


# -- LocalStack's own resources and internal calls ----------------------------------------------


@pytest.fixture
def lambda_code_stored(aws, account_id):
    """A function, so that Lambda has stored its code in its internal bucket."""
    aws.client("lambda").create_function(
        FunctionName="stored",
        Runtime="python3.12",
        Role=f"arn:aws:iam::{account_id}:role/r",
        Handler="app.handler",
        Code={"ZipFile": zipped("def handler(event, context):\n    return 'secret code'\n")},
    )


def test_lambdas_code_bucket_is_refused(
    aws, other, endpoint_url, token, account_id, lambda_code_stored
):
    admin = as_admin(aws.client("s3"), token)
    keys = [o["Key"] for o in admin.list_objects_v2(Bucket=LAMBDA_BUCKET)["Contents"]]
    assert any(key.startswith(f"snapshots/{account_id}/") for key in keys)  # what it would leak

    s3 = other.client("s3")
    assert "emulator's own" in refused(lambda: s3.list_objects_v2(Bucket=LAMBDA_BUCKET))
    refused(lambda: s3.get_object(Bucket=LAMBDA_BUCKET, Key=keys[0]))
    refused(lambda: s3.delete_object(Bucket=LAMBDA_BUCKET, Key=keys[0]))
    refused(lambda: aws.client("s3").list_objects_v2(Bucket=LAMBDA_BUCKET))  # even the owner's
    # pre-creating the bucket of another region would receive other students' code
    refused(lambda: s3.create_bucket(Bucket="awslambda-eu-west-1-tasks", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}))  # fmt: skip
    host = (
        f"{LAMBDA_BUCKET}.s3.localhost.localstack.cloud:{urllib.parse.urlsplit(endpoint_url).port}"
    )
    for headers in ({"Host": host}, {"Host": host, **sigv4_header(new_account_id(), "s3")}):
        assert http("GET", endpoint_url + "/", headers=headers)[0] == 403  # virtual-host style
    assert http("GET", f"{endpoint_url}/{LAMBDA_BUCKET}/{keys[0]}")[0] == 403  # path style
    # LocalStack's internal account is no way in either
    internal = session_for(endpoint_url=endpoint_url, account_id=INTERNAL_ACCOUNT)
    refused(lambda: internal.client("s3").list_buckets())


def test_lambda_still_reads_its_code(aws, lambda_code_stored):
    lam = aws.client("lambda")
    lam.get_waiter("function_active_v2").wait(FunctionName="stored")
    assert json.loads(lam.invoke(FunctionName="stored")["Payload"].read()) == "secret code"


@pytest.mark.parametrize(
    "dto", ["{}", '{"cloudlabs": "guessed"}', '{"service_principal": "lambda"}', "not json"]
)
def test_students_cannot_pass_for_localstacks_internal_clients(other, dto):
    s3 = other.client("s3")
    s3.meta.events.register(
        "before-sign.*.*",
        lambda request, **_: request.headers.__setitem__("x-localstack-data", dto),
    )
    refused(lambda: s3.list_objects_v2(Bucket=LAMBDA_BUCKET))


def test_internal_calls_still_deliver_sns_to_sqs(aws):
    """SNS delivers with LocalStack's internal client (as the default account): not refused."""
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    topic = sns.create_topic(Name="news")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    sns.publish(TopicArn=topic, Message="hello")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
    assert json.loads(messages[0]["Body"])["Message"] == "hello"


def test_a_clients_moto_account_header_is_ignored(aws, other):
    aws.client("dynamodb").create_table(
        TableName="mine",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb = other.client("dynamodb")
    account = aws.client("sts").get_caller_identity()["Account"]
    ddb.meta.events.register(
        "before-sign.*.*",
        lambda request, **_: request.headers.__setitem__("x-moto-account-id", account),
    )
    assert ddb.list_tables()["TableNames"] == []


# -- one account cannot reach another's resources ---------------------------------------------


def test_s3_bucket_of_another_account(aws, other, account_id, endpoint_url):
    bucket = f"private-{account_id}"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"A's secret")
    theirs = other.client("s3")
    other_bucket = f"theirs-{account_id}"
    theirs.create_bucket(Bucket=other_bucket)
    calls = {
        "get": lambda: theirs.get_object(Bucket=bucket, Key="secret.txt"),
        "head": lambda: theirs.head_object(Bucket=bucket, Key="secret.txt"),
        "list": lambda: theirs.list_objects_v2(Bucket=bucket),
        "put": lambda: theirs.put_object(Bucket=bucket, Key="x", Body=b"x"),
        "delete": lambda: theirs.delete_object(Bucket=bucket, Key="secret.txt"),
        "policy": lambda: theirs.put_bucket_policy(Bucket=bucket, Policy="{}"),
        "acl": lambda: theirs.get_bucket_acl(Bucket=bucket),
        "delete bucket": lambda: theirs.delete_bucket(Bucket=bucket),
        "copy": lambda: theirs.copy_object(
            Bucket=other_bucket, Key="c", CopySource={"Bucket": bucket, "Key": "secret.txt"}
        ),
        "copy (string)": lambda: theirs.copy_object(
            Bucket=other_bucket, Key="c", CopySource=f"{bucket}/secret.txt"
        ),
    }
    for name, call in calls.items():
        with pytest.raises(ClientError, match=r"403|AccessDenied|Forbidden"):
            call()
            pytest.fail(name)
    assert http("GET", f"{endpoint_url}/{bucket}/secret.txt")[0] == 403  # anonymous
    # the owner, and its pre-signed URLs, still work
    assert s3.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"A's secret"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret.txt"})
    assert http("GET", url) == (200, b"A's secret")


def test_s3_public_reads_work_across_accounts_as_in_aws(aws, other, account_id, endpoint_url):
    bucket = f"public-{account_id}"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"hello")
    assert http("GET", f"{endpoint_url}/{bucket}/index.html")[0] == 403  # blocked by default
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            }
        ),
    )
    assert http("GET", f"{endpoint_url}/{bucket}/index.html") == (200, b"hello")
    assert other.client("s3").get_object(Bucket=bucket, Key="index.html")["Body"].read() == b"hello"
    assert http("GET", f"{endpoint_url}/{bucket}")[0] == 403  # listing was not made public
    refused(lambda: other.client("s3").put_object(Bucket=bucket, Key="defaced", Body=b"x"))


def test_sqs_queue_of_another_account(aws, other, endpoint_url, account_id):
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="private")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="A's message")
    theirs = other.client("sqs")
    for call in (
        lambda: theirs.receive_message(QueueUrl=url),
        lambda: theirs.send_message(QueueUrl=url, MessageBody="spam"),
        lambda: theirs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
        lambda: theirs.purge_queue(QueueUrl=url),
        lambda: theirs.delete_queue(QueueUrl=url),
        lambda: theirs.get_queue_url(QueueName="private", QueueOwnerAWSAccountId=account_id),
    ):
        refused(call)
    # the query protocol, straight to the queue URL (with B's credentials, or none)
    body = b"Action=ReceiveMessage&VisibilityTimeout=0&Version=2012-11-05"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    path = urllib.parse.urlsplit(url).path
    for target in (path, "/" + "/".join(path.split("/")[-2:])):
        for headers in (sigv4_header(new_account_id(), "sqs"), {}):
            status, text = http(
                "POST", endpoint_url + target, body=body, headers={**form, **headers}
            )
            assert status == 403 and b"A's message" not in text
    status, text = http(
        "POST", endpoint_url + path, body=body, headers={**form, **sigv4_header(account_id, "sqs")}
    )
    assert status == 200 and b"A's message" in text  # the owner's own request goes through
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == 1


def test_dynamodb_table_of_another_account(aws, other):
    ddb = aws.client("dynamodb")
    arn = ddb.create_table(
        TableName="secret",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    ddb.put_item(TableName="secret", Item={"pk": {"S": "A's item"}})
    theirs = other.client("dynamodb")
    assert theirs.list_tables()["TableNames"] == []
    refused(lambda: theirs.scan(TableName=arn))
    refused(lambda: theirs.describe_table(TableName=arn))
    refused(lambda: theirs.delete_table(TableName=arn))
    refused(lambda: theirs.put_item(TableName=arn, Item={"pk": {"S": "x"}}))
    refused(lambda: theirs.scan(TableName="secret"), "ResourceNotFoundException")
    assert ddb.describe_table(TableName=arn)["Table"]["ItemCount"] >= 0  # the owner's ARN works


def test_lambda_function_of_another_account(aws, other, account_id, lambda_code_stored):
    lam = aws.client("lambda")
    arn = lam.get_function(FunctionName="stored")["Configuration"]["FunctionArn"]
    theirs = other.client("lambda")
    for name in (arn, f"{account_id}:function:stored"):
        refused(lambda name=name: theirs.get_function(FunctionName=name))
        refused(lambda name=name: theirs.invoke(FunctionName=name))
        refused(lambda name=name: theirs.delete_function(FunctionName=name))
        refused(lambda name=name: theirs.update_function_code(FunctionName=name, ZipFile=b"x"))
    refused(lambda: theirs.get_function(FunctionName="stored"), "ResourceNotFoundException")
    assert lam.get_function(FunctionName=arn)["Configuration"]["FunctionArn"] == arn


def test_logs_of_another_account(aws, other):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/app/secret")
    logs.create_log_stream(logGroupName="/app/secret", logStreamName="s")
    logs.put_log_events(
        logGroupName="/app/secret",
        logStreamName="s",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "A's log"}],
    )
    arn = logs.describe_log_groups(logGroupNamePrefix="/app/secret")["logGroups"][0]["arn"]
    arn = arn.removesuffix(":*")
    theirs = other.client("logs")
    assert theirs.describe_log_groups()["logGroups"] == []
    refused(lambda: theirs.get_log_events(logGroupIdentifier=arn, logStreamName="s"))
    refused(lambda: theirs.filter_log_events(logGroupIdentifier=arn))
    refused(lambda: theirs.describe_log_streams(logGroupIdentifier=arn))
    refused(lambda: theirs.get_log_events(logGroupName="/app/secret", logStreamName="s"), "ResourceNotFoundException")  # fmt: skip


def test_sns_sts_and_kms_of_another_account(aws, other):
    topic = aws.client("sns").create_topic(Name="private")["TopicArn"]
    role = aws.client("iam").create_role(RoleName="admin", AssumeRolePolicyDocument="{}")
    key = aws.client("kms").create_key()["KeyMetadata"]["Arn"]
    sns, sts, kms = other.client("sns"), other.client("sts"), other.client("kms")
    refused(lambda: sns.get_topic_attributes(TopicArn=topic))
    refused(lambda: sns.publish(TopicArn=topic, Message="spam"))
    refused(lambda: sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="x@example.com"))
    refused(lambda: sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="intruder"))
    refused(lambda: kms.describe_key(KeyId=key))
    refused(lambda: kms.encrypt(KeyId=key, Plaintext=b"x"))


def test_lambda_code_from_another_accounts_bucket(aws, other, account_id):
    aws.client("s3").create_bucket(Bucket=f"code-{account_id}")
    aws.client("s3").put_object(Bucket=f"code-{account_id}", Key="app.zip", Body=zipped("x = 1\n"))
    theirs = other.client("lambda")
    refused(
        lambda: theirs.create_function(
            FunctionName="copied",
            Runtime="python3.12",
            Role=f"arn:aws:iam::{other.client('sts').get_caller_identity()['Account']}:role/r",
            Handler="app.handler",
            Code={"S3Bucket": f"code-{account_id}", "S3Key": "app.zip"},
        )
    )


def test_api_gateway_integrations_act_for_their_owner(aws, other, account_id, endpoint_url):
    """An AWS integration runs as LocalStack's internal client: it must not read, for its owner,
    another account's bucket or Lambda's code bucket (a confused deputy)."""
    victim = f"victim-{account_id}"
    aws.client("s3").create_bucket(Bucket=victim)
    aws.client("s3").put_object(Bucket=victim, Key="secret.txt", Body=b"A's secret")
    mine = f"mine-{account_id}"
    other.client("s3").create_bucket(Bucket=mine)
    other.client("s3").put_object(Bucket=mine, Key="secret.txt", Body=b"B's own")
    role = other.client("iam").create_role(RoleName="apigw", AssumeRolePolicyDocument="{}")
    apigw = other.client("apigateway")
    api = apigw.create_rest_api(name="deputy")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    targets = {"steal": f"{victim}/secret.txt", "own": f"{mine}/secret.txt", "code": LAMBDA_BUCKET}
    for part, target in targets.items():
        resource = apigw.create_resource(restApiId=api, parentId=root, pathPart=part)["id"]
        method = {"restApiId": api, "resourceId": resource, "httpMethod": "GET"}
        apigw.put_method(**method, authorizationType="NONE")
        apigw.put_integration(
            **method,
            type="AWS",
            integrationHttpMethod="GET",
            uri=f"arn:aws:apigateway:us-east-1:s3:path/{target}",
            credentials=role["Role"]["Arn"],
        )
        apigw.put_method_response(**method, statusCode="200")
        apigw.put_integration_response(**method, statusCode="200", selectionPattern="")
    apigw.create_deployment(restApiId=api, stageName="dev")
    base = f"{endpoint_url}/restapis/{api}/dev/_user_request_"
    assert http("GET", f"{base}/own")[1] == b"B's own"
    for part in ("steal", "code"):
        _, body = http("GET", f"{base}/{part}")
        assert b"AccessDenied" in body and b"secret" not in body, body
