"""State checks for the serverless lab (URL shortener), run from outside the student's kernel."""

import json
import time

from grader.statecheck import Parts, state_check


def _item(aws, prefix, code):
    ddb = aws.client("dynamodb")
    return ddb.get_item(
        TableName=f"{prefix}-links", Key={"code": {"S": code}}, ConsistentRead=True
    ).get("Item")


@state_check("ex1_state")
def links_table_stream_and_ttl(aws, prefix):
    """The links table has a NEW_AND_OLD_IMAGES stream and TTL on expires_at (half each)."""
    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName=f"{prefix}-links")["Table"]
    stream = table.get("StreamSpecification") or {}

    def ttl_on_expires_at():
        ttl = ddb.describe_time_to_live(TableName=f"{prefix}-links")["TimeToLiveDescription"]
        return (
            ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
            and ttl.get("AttributeName") == "expires_at"
        )

    check = Parts()
    check.part(
        "the NEW_AND_OLD_IMAGES stream",
        stream.get("StreamEnabled") and stream.get("StreamViewType") == "NEW_AND_OLD_IMAGES",
        why="the table has no stream of NEW_AND_OLD_IMAGES",
    )
    check.part(
        "TTL on expires_at", ttl_on_expires_at, why="TTL is not enabled on the attribute expires_at"
    )
    return check


@state_check("ex2_state")
def seeded_links(aws, prefix):
    """docs (changed once, version 2), blog and news exist."""
    docs = _item(aws, prefix, "docs")
    assert docs, "the item docs does not exist"
    assert _item(aws, prefix, "blog") and _item(aws, prefix, "news"), "blog or news is missing"
    assert docs["url"]["S"] == "https://docs.aws.amazon.com/lambda", "docs still has its first url"
    assert docs.get("version", {}).get("N") == "2", "docs should be at version 2 after one change"


def _expiry_and_counter(aws, prefix, promo):
    expires = int(promo.get("expires_at", {}).get("N", "0"))
    assert expires > time.time(), "promo needs expires_at in the future, in epoch seconds"
    assert expires < time.time() + 10 * 86400, "expires_at looks like milliseconds, not seconds"
    stats = _item(aws, prefix, "#stats") or {}
    assert int(stats.get("total", {}).get("N", "0")) >= 1, "the #stats counter was not incremented"
    return True


@state_check("ex3_state")
def temporary_link(aws, prefix):
    """promo exists (half); then it has a future expires_at and #stats counts at least one link
    (half)."""
    promo = _item(aws, prefix, "promo")
    check = Parts()
    exists = check.part("the item promo", promo, why="the item promo does not exist")
    check.part(
        "promo's expiry and the #stats counter",
        lambda: _expiry_and_counter(aws, prefix, promo),
        requires=exists,
    )
    return check


def _role_for_lambda(iam, role_name):
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    attached = [
        p["PolicyName"]
        for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    ]
    return "lambda.amazonaws.com" in json.dumps(trust) and "AWSLambdaBasicExecutionRole" in attached


@state_check("ex4_state")
def function_and_role(aws, prefix):
    """The shortener runs python3.12 with TABLE_NAME (1/3) under {prefix}-lambda-role (1/3), a role
    Lambda may assume with the basic execution policy (1/3)."""
    lam, iam = aws.client("lambda"), aws.client("iam")
    cfg = lam.get_function_configuration(FunctionName=f"{prefix}-shortener")
    role_name = f"{prefix}-lambda-role"
    check = Parts()
    check.part(
        "python3.12 with TABLE_NAME",
        cfg["Runtime"] == "python3.12"
        and cfg.get("Environment", {}).get("Variables", {}).get("TABLE_NAME") == f"{prefix}-links",
        why=f"the runtime is not python3.12 or TABLE_NAME is not {prefix}-links",
    )
    check.part(
        f"the role {role_name}",
        cfg["Role"].endswith(f":role/{role_name}"),
        why=f"the function does not run as {role_name}",
    )
    check.part(
        "the role's trust and policy",
        lambda: _role_for_lambda(iam, role_name),
        why=f"{role_name} does not trust lambda.amazonaws.com or lacks AWSLambdaBasicExecutionRole",
    )
    return check


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


def _weighted_alias(lam, prefix):
    alias = lam.get_alias(FunctionName=f"{prefix}-shortener", Name="live")
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return (
        alias["FunctionVersion"] != "$LATEST"
        and any(0 < w < 1 for w in weights.values())
        and alias["FunctionVersion"] not in weights
    )


@state_check("ex6_state")
def layer_and_weighted_alias(aws, prefix):
    """A layer version exists (half) and the live alias routes a share to a second version (half)."""
    lam = aws.client("lambda")
    check = Parts()
    check.part(
        "the layer version",
        lambda: lam.list_layer_versions(LayerName=f"{prefix}-shortcode")["LayerVersions"],
        why=f"the layer {prefix}-shortcode has no version",
    )
    check.part(
        "the weighted alias live",
        lambda: _weighted_alias(lam, prefix),
        why="live does not point at a published version with a share routed to another one",
    )
    return check


@state_check("ex7_state")
def async_failure_destination(aws, prefix):
    """Failed async events go to the failed-events queue, with no retries."""
    lam = aws.client("lambda")
    cfg = lam.get_function_event_invoke_config(FunctionName=f"{prefix}-shortener")
    destination = (cfg.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination", "")
    assert destination.endswith(f":{prefix}-failed-events"), (
        "the on-failure destination is not the failed-events queue"
    )
    assert cfg.get("MaximumRetryAttempts") == 0, "set MaximumRetryAttempts to 0"


def _visibility_fits(lam, sqs, prefix, worker):
    url = sqs.get_queue_url(QueueName=f"{prefix}-clicks")["QueueUrl"]
    visibility = int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"][
            "VisibilityTimeout"
        ]
    )
    return visibility >= 6 * lam.get_function_configuration(FunctionName=worker)["Timeout"]


@state_check("ex8_state")
def click_worker(aws, prefix):
    """An enabled SQS mapping with partial batch responses, a sane visibility timeout, counted
    clicks (1/3 each)."""
    lam, sqs = aws.client("lambda"), aws.client("sqs")
    worker = f"{prefix}-click-worker"
    mappings = [
        m
        for m in lam.list_event_source_mappings(FunctionName=worker)["EventSourceMappings"]
        if m["EventSourceArn"].endswith(f":{prefix}-clicks")
    ]
    assert mappings, "no event source mapping from the clicks queue to the worker"
    mapping = mappings[0]
    check = Parts()
    check.part(
        "the enabled mapping with partial batch responses",
        mapping["State"] in ("Enabled", "Enabling", "Creating")
        and "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []),
        why="the mapping is not enabled or does not report batch item failures",
    )
    check.part(
        "a visibility timeout of at least 6 times the worker's timeout",
        lambda: _visibility_fits(lam, sqs, prefix, worker),
        why="the clicks queue's visibility timeout is under 6 times the worker's timeout",
    )
    check.part(
        "the counted clicks",
        lambda: int((_item(aws, prefix, "docs") or {}).get("clicks", {}).get("N", "0")) >= 3,
        why="docs has fewer than 3 clicks counted",
    )
    return check


def _proxy_integration(apigw, api_id, prefix):
    resources = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    assert "/links/{code}" in resources, "the API has no resource /links/{code}"
    integration = apigw.get_integration(
        restApiId=api_id, resourceId=resources["/links/{code}"], httpMethod="GET"
    )
    return integration["type"] == "AWS_PROXY" and f"{prefix}-shortener" in integration["uri"]


def _invoke_permission(lam, api_id, prefix):
    statements = []
    for qualifier in ("live", None):
        try:
            kwargs = {"FunctionName": f"{prefix}-shortener"}
            if qualifier:
                kwargs["Qualifier"] = qualifier
            statements += json.loads(lam.get_policy(**kwargs)["Policy"])["Statement"]
        except lam.exceptions.ResourceNotFoundException:
            pass
    return any(
        "apigateway.amazonaws.com" in json.dumps(s.get("Principal"))
        and api_id in json.dumps(s.get("Condition", {}))
        for s in statements
    )


@state_check("ex9_state")
def rest_api(aws, prefix):
    """Stage v1, an AWS_PROXY GET on /links/{code}, and a resource-based permission for this API
    (1/3 each)."""
    apigw, lam = aws.client("apigateway"), aws.client("lambda")
    apis = [a for a in apigw.get_rest_apis()["items"] if a["name"] == f"{prefix}-shortener-api"]
    assert apis, f"no REST API named {prefix}-shortener-api"
    api_id = apis[0]["id"]
    check = Parts()
    check.part(
        "the stage v1",
        lambda: any(s["stageName"] == "v1" for s in apigw.get_stages(restApiId=api_id)["item"]),
        why="the API has no stage v1",
    )
    check.part(
        "the AWS_PROXY GET on /links/{code}",
        lambda: _proxy_integration(apigw, api_id, prefix),
        why="GET /links/{code} is not an AWS_PROXY integration with the shortener",
    )
    check.part(
        "the permission for API Gateway",
        lambda: _invoke_permission(lam, api_id, prefix),
        why="the shortener's policy does not let this API (apigateway.amazonaws.com) invoke it",
    )
    return check


@state_check("ex10_state")
def review_workflow(aws, prefix):
    """The review state machine exists (1/3), has a Task calling the shortener and a Choice (1/3),
    and ran both ways (1/3)."""
    sfn = aws.client("stepfunctions")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    arn = machines.get(f"{prefix}-link-review")

    def task_and_choice():
        states = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]).get(
            "States", {}
        )
        return any(s.get("Type") == "Choice" for s in states.values()) and any(
            s.get("Type") == "Task" and f"{prefix}-shortener" in json.dumps(s)
            for s in states.values()
        )

    check = Parts()
    machine = check.part(
        f"the state machine {prefix}-link-review",
        arn,
        why=f"no state machine named {prefix}-link-review",
    )
    check.part(
        "the Task and Choice states",
        task_and_choice,
        requires=machine,
        why="the definition needs a Choice state and a Task state calling the shortener",
    )
    check.part(
        "a succeeded and a failed execution",
        lambda: (
            {"SUCCEEDED", "FAILED"}
            <= {e["status"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
        ),
        requires=machine,
        why="the state machine has not both succeeded and failed",
    )
    return check
