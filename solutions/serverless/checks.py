"""State checks for the serverless lab (URL shortener), run from outside the student's kernel."""

import json
import time

from grader.statecheck import state_check


def _item(aws, prefix, code):
    ddb = aws.client("dynamodb")
    return ddb.get_item(TableName=f"{prefix}-links", Key={"code": {"S": code}},
                        ConsistentRead=True).get("Item")


@state_check("ex1_state")
def links_table_stream_and_ttl(aws, prefix):
    """The links table has a NEW_AND_OLD_IMAGES stream and TTL on expires_at."""
    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName=f"{prefix}-links")["Table"]
    score = 0.0
    stream = table.get("StreamSpecification") or {}
    if stream.get("StreamEnabled") and stream.get("StreamViewType") == "NEW_AND_OLD_IMAGES":
        score += 0.5
    ttl = ddb.describe_time_to_live(TableName=f"{prefix}-links")["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName") == "expires_at":
        score += 0.5
    assert score > 0, "no NEW_AND_OLD_IMAGES stream and no TTL on expires_at"
    return score


@state_check("ex2_state")
def seeded_links(aws, prefix):
    """docs (changed once, version 2), blog and news exist."""
    docs = _item(aws, prefix, "docs")
    assert docs, "the item docs does not exist"
    assert _item(aws, prefix, "blog") and _item(aws, prefix, "news"), "blog or news is missing"
    assert docs["url"]["S"] == "https://docs.aws.amazon.com/lambda", "docs still has its first url"
    assert docs.get("version", {}).get("N") == "2", "docs should be at version 2 after one change"


@state_check("ex3_state")
def temporary_link(aws, prefix):
    """promo has a future expires_at and #stats counts at least one link."""
    promo = _item(aws, prefix, "promo")
    assert promo, "the item promo does not exist"
    yield 0.5  # the item exists; a correct expiry and counter earn the other half
    expires = int(promo.get("expires_at", {}).get("N", "0"))
    assert expires > time.time(), "promo needs expires_at in the future, in epoch seconds"
    assert expires < time.time() + 10 * 86400, "expires_at looks like milliseconds, not seconds"
    stats = _item(aws, prefix, "#stats") or {}
    assert int(stats.get("total", {}).get("N", "0")) >= 1, "the #stats counter was not incremented"


@state_check("ex4_state")
def function_and_role(aws, prefix):
    """The shortener runs python3.12 with TABLE_NAME under a role Lambda may assume."""
    lam, iam = aws.client("lambda"), aws.client("iam")
    cfg = lam.get_function_configuration(FunctionName=f"{prefix}-shortener")
    score = 0.0
    if cfg["Runtime"] == "python3.12" and \
            cfg.get("Environment", {}).get("Variables", {}).get("TABLE_NAME") == f"{prefix}-links":
        score += 1 / 3
    role_name = f"{prefix}-lambda-role"
    if cfg["Role"].endswith(f":role/{role_name}"):
        score += 1 / 3
    role = iam.get_role(RoleName=role_name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    principals = json.dumps(trust)
    attached = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]]
    if "lambda.amazonaws.com" in principals and "AWSLambdaBasicExecutionRole" in attached:
        score += 1 / 3
    assert score > 0, "the function is not configured as asked"
    return round(score, 4)


@state_check("ex5_state")
def function_log(aws, prefix):
    """The function's log group holds the RESOLVE line of this exercise's invocation (code blog;
    other exercises resolve other codes, so their lines prove nothing here)."""
    logs = aws.client("logs")
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=f"/aws/lambda/{prefix}-shortener", PaginationConfig={"MaxItems": 2000}
    )
    lines = [e["message"] for page in pages for e in page["events"] if "RESOLVE" in e["message"]]
    assert lines, "no RESOLVE line in the function's log"
    assert any("blog" in line for line in lines), "no RESOLVE line for the code blog in the log"


@state_check("ex6_state")
def layer_and_weighted_alias(aws, prefix):
    """A layer version exists and the live alias routes a share to a second version."""
    lam = aws.client("lambda")
    score = 0.0
    if lam.list_layer_versions(LayerName=f"{prefix}-shortcode")["LayerVersions"]:
        score += 0.5
    alias = lam.get_alias(FunctionName=f"{prefix}-shortener", Name="live")
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    if alias["FunctionVersion"] != "$LATEST" and any(0 < w < 1 for w in weights.values()) \
            and alias["FunctionVersion"] not in weights:
        score += 0.5
    assert score > 0, "no layer version and no weighted alias live"
    return score


@state_check("ex7_state")
def async_failure_destination(aws, prefix):
    """Failed async events go to the failed-events queue, with no retries."""
    lam = aws.client("lambda")
    cfg = lam.get_function_event_invoke_config(FunctionName=f"{prefix}-shortener")
    destination = (cfg.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination", "")
    assert destination.endswith(f":{prefix}-failed-events"), "the on-failure destination is not the failed-events queue"
    assert cfg.get("MaximumRetryAttempts") == 0, "set MaximumRetryAttempts to 0"


@state_check("ex8_state")
def click_worker(aws, prefix):
    """An enabled SQS mapping with partial batch responses, a sane visibility timeout, counted clicks."""
    lam, sqs = aws.client("lambda"), aws.client("sqs")
    worker = f"{prefix}-click-worker"
    mappings = [m for m in lam.list_event_source_mappings(FunctionName=worker)["EventSourceMappings"]
                if m["EventSourceArn"].endswith(f":{prefix}-clicks")]
    assert mappings, "no event source mapping from the clicks queue to the worker"
    score = 0.0
    mapping = mappings[0]
    if mapping["State"] in ("Enabled", "Enabling", "Creating") and \
            "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []):
        score += 1 / 3
    url = sqs.get_queue_url(QueueName=f"{prefix}-clicks")["QueueUrl"]
    visibility = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
                     ["Attributes"]["VisibilityTimeout"])
    timeout = lam.get_function_configuration(FunctionName=worker)["Timeout"]
    if visibility >= 6 * timeout:
        score += 1 / 3
    docs = _item(aws, prefix, "docs") or {}
    if int(docs.get("clicks", {}).get("N", "0")) >= 3:
        score += 1 / 3
    return round(score, 4)


@state_check("ex9_state")
def rest_api(aws, prefix):
    """Stage v1, an AWS_PROXY GET on /links/{code}, and a resource-based permission for this API."""
    apigw, lam = aws.client("apigateway"), aws.client("lambda")
    apis = [a for a in apigw.get_rest_apis()["items"] if a["name"] == f"{prefix}-shortener-api"]
    assert apis, f"no REST API named {prefix}-shortener-api"
    api_id = apis[0]["id"]
    score = 0.0
    if any(s["stageName"] == "v1" for s in apigw.get_stages(restApiId=api_id)["item"]):
        score += 1 / 3
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    if "/links/{code}" in resources:
        try:
            integration = apigw.get_integration(restApiId=api_id, resourceId=resources["/links/{code}"],
                                                httpMethod="GET")
            if integration["type"] == "AWS_PROXY" and f"{prefix}-shortener" in integration["uri"]:
                score += 1 / 3
        except apigw.exceptions.NotFoundException:
            pass
    statements = []
    for qualifier in ("live", None):
        try:
            kwargs = {"FunctionName": f"{prefix}-shortener"}
            if qualifier:
                kwargs["Qualifier"] = qualifier
            statements += json.loads(lam.get_policy(**kwargs)["Policy"])["Statement"]
        except lam.exceptions.ResourceNotFoundException:
            pass
    if any("apigateway.amazonaws.com" in json.dumps(s.get("Principal")) and api_id in json.dumps(s.get("Condition", {}))
           for s in statements):
        score += 1 / 3
    assert score > 0, "the API has no stage v1, no proxy integration and no permission"
    return round(score, 4)


@state_check("ex10_state")
def review_workflow(aws, prefix):
    """The review state machine has a Task calling the shortener and a Choice, and ran both ways."""
    sfn = aws.client("stepfunctions")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    assert f"{prefix}-link-review" in machines, f"no state machine named {prefix}-link-review"
    arn = machines[f"{prefix}-link-review"]
    score = 1 / 3
    states = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]).get("States", {})
    types = {s.get("Type") for s in states.values()}
    if "Choice" in types and any(s.get("Type") == "Task" and f"{prefix}-shortener" in json.dumps(s)
                                 for s in states.values()):
        score += 1 / 3
    statuses = {e["status"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
    if {"SUCCEEDED", "FAILED"} <= statuses:
        score += 1 / 3
    return round(score, 4)
