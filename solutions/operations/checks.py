"""State checks for the operations lab, run by the grader outside the student's kernel.

Every check reads only what the emulator really stores or does: metric datapoints and their
statistics (no percentiles), alarm configurations and alarm history (state changes made with
SetAlarmState; the emulator's own timed evaluation is never waited for), SNS subscriptions and
queue policies, log groups, streams and metric filters as stored (the emulator does not apply
filter patterns), Scheduler schedules and EventBridge rules (patterns evaluated with
TestEventPattern), CloudFormation stacks, templates and change sets, and Lambda aliases.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from grader.statecheck import Parts, state_check

SERVICE = [{"Name": "Service", "Value": "checkout"}]
LATENCIES_MS = [112, 98, 143, 127, 350, 101, 95, 880, 134, 120]
LOG_LINES = [
    {"level": "INFO", "route": "/cart", "latency_ms": 95, "msg": "cart loaded"},
    {"level": "INFO", "route": "/pay", "latency_ms": 143, "msg": "payment authorised"},
    {"level": "ERROR", "route": "/pay", "latency_ms": 880, "msg": "card processor timed out"},
    {"level": "WARN", "route": "/pay", "latency_ms": 350, "msg": "retrying ERROR-prone processor"},
    {"level": "ERROR", "route": "/cart", "latency_ms": 120, "msg": "stock service unavailable"},
    {"level": "INFO", "route": "/pay", "latency_ms": 101, "msg": "payment authorised"},
]
REPORT_INPUT = {"job": "nightly-sales-report", "service": "checkout"}


def _stats(cloudwatch, namespace, name, dimensions=None):
    """The statistics of every datapoint of a metric stored in the last 3 hours, or None."""
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=dimensions or [],
        StartTime=now - timedelta(hours=3),
        EndTime=now + timedelta(minutes=10),
        Period=3 * 3600 + 600,
        Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
    )["Datapoints"]
    return points[0] if points else None


def _metric_alarm(cloudwatch, name):
    found = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert found, f"there is no alarm named {name}"
    return found[0]


def _topic_arn(aws, prefix):
    sns = aws.client("sns")
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    return next((t for t in topics if t.endswith(f":{prefix}-oncall")), None)


def _queue_arn(aws, name):
    sqs = aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except Exception as exc:
        raise AssertionError(f"there is no queue named {name}") from exc
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attrs["QueueArn"], attrs


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@state_check("ex1_state")
def custom_metrics(aws, prefix):
    """Latency with Service=checkout holds the ten latencies (2/3); OrdersPlaced holds 42 (1/3)."""
    cloudwatch = aws.client("cloudwatch")
    namespace = f"{prefix}/Checkout"
    check = Parts()

    def latency():
        stats = _stats(cloudwatch, namespace, "Latency", SERVICE)
        assert stats, f"Latency in {namespace} with Service=checkout has no datapoints"
        assert stats["Minimum"] == min(LATENCIES_MS), f"the smallest latency is {stats['Minimum']}"
        assert stats["Maximum"] == max(LATENCIES_MS), f"the largest latency is {stats['Maximum']}"
        mean = sum(LATENCIES_MS) / len(LATENCIES_MS)
        assert abs(stats["Average"] - mean) < 1e-6, "the latencies' average differs from the data"
        assert stats["SampleCount"] % len(LATENCIES_MS) == 0, "publish each latency once"
        return True

    def orders():
        stats = _stats(cloudwatch, namespace, "OrdersPlaced", SERVICE)
        assert stats, f"OrdersPlaced in {namespace} with Service=checkout has no datapoints"
        assert stats["Maximum"] == 42 and stats["Minimum"] == 42, "OrdersPlaced should hold 42"
        return True

    check.part("the ten Latency datapoints", latency, weight=2)
    check.part("the OrdersPlaced datapoint", orders)
    return check


@state_check("ex2_state")
def latency_alarm(aws, prefix):
    """The p90 latency alarm: metric, statistic, 3 of 5 x 60 s, > 300, notBreaching, actions."""
    cloudwatch = aws.client("cloudwatch")
    alarm = _metric_alarm(cloudwatch, f"{prefix}-checkout-latency")
    topic = _topic_arn(aws, prefix)
    check = Parts()
    check.part(
        "the watched metric",
        (alarm.get("Namespace"), alarm.get("MetricName"), alarm.get("Dimensions"))
        == (f"{prefix}/Checkout", "Latency", SERVICE),
        why="the alarm should watch Latency in your namespace with Service=checkout",
    )
    check.part(
        "the p90 statistic",
        alarm.get("ExtendedStatistic") == "p90",
        why="the alarm should use the p90 percentile",
    )
    check.part(
        "3 out of 5 periods of 60 s",
        (alarm.get("Period"), alarm.get("EvaluationPeriods"), alarm.get("DatapointsToAlarm"))
        == (60, 5, 3),
        why="the alarm should need 3 breaching datapoints out of 5 periods of 60 s",
    )
    check.part(
        "the threshold of 300 ms",
        (alarm.get("Threshold"), alarm.get("ComparisonOperator")) == (300, "GreaterThanThreshold"),
        why="the alarm should fire when the p90 is greater than 300",
    )
    check.part(
        "missing data as not breaching",
        alarm.get("TreatMissingData") == "notBreaching",
        why="missing data should be treated as notBreaching",
    )
    check.part(
        "the on-call notifications",
        topic is not None
        and topic in alarm.get("AlarmActions", [])
        and topic in alarm.get("OKActions", []),
        why=f"the alarm should notify the topic {prefix}-oncall on ALARM and on OK",
    )
    return check


@state_check("ex3_state")
def oncall_drill(aws, prefix):
    """The pager subscription (1/4), its pinned policy (1/4), the drill in the history (1/2)."""
    sns = aws.client("sns")
    cloudwatch = aws.client("cloudwatch")
    topic = _topic_arn(aws, prefix)
    assert topic, f"there is no topic named {prefix}-oncall"
    pager_arn, attrs = _queue_arn(aws, f"{prefix}-pager")
    check = Parts()
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    check.part(
        "the pager's subscription",
        any(s["Protocol"] == "sqs" and s["Endpoint"] == pager_arn for s in subs),
        why=f"{prefix}-pager is not subscribed to {prefix}-oncall with the sqs protocol",
    )

    def pinned():
        policy = json.loads(attrs.get("Policy") or "{}")
        for st in _as_list(policy.get("Statement")):
            principal = st.get("Principal") or {}
            services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
            cond = st.get("Condition") or {}
            sources = [cond.get(op, {}).get("aws:SourceArn") for op in ("ArnEquals", "ArnLike")]
            if (
                st.get("Effect") == "Allow"
                and "sns.amazonaws.com" in services
                and {"sqs:SendMessage", "sqs:*"} & set(_as_list(st.get("Action")))
                and pager_arn in _as_list(st.get("Resource"))
                and topic in sources
            ):
                return True
        return False

    check.part(
        "the queue policy pinned to the topic",
        pinned,
        why="the pager's policy should let sns.amazonaws.com send only from the on-call topic",
    )

    def drilled():
        history = cloudwatch.describe_alarm_history(
            AlarmName=f"{prefix}-checkout-latency", HistoryItemType="StateUpdate"
        )["AlarmHistoryItems"]
        reason = f"drill: on-call paging test for {prefix}"
        for item in history:
            new = json.loads(item.get("HistoryData") or "{}").get("newState", {})
            if new.get("stateValue") == "ALARM" and new.get("stateReason") == reason:
                return True
        return False

    check.part(
        "the drill in the alarm's history",
        drilled,
        weight=2,
        why="the latency alarm was never set to ALARM with the drill reason",
    )
    return check


@state_check("ex4_state")
def logs_and_filter(aws, prefix):
    """Retention (1/4), the stream's events (1/4), the metric filter (1/4), its metric (1/4)."""
    logs = aws.client("logs")
    cloudwatch = aws.client("cloudwatch")
    group_name = f"/{prefix}/checkout"
    groups = logs.describe_log_groups(logGroupNamePrefix=group_name)["logGroups"]
    group = next((g for g in groups if g["logGroupName"] == group_name), None)
    assert group, f"there is no log group {group_name}"
    check = Parts()
    check.part(
        "the 30-day retention",
        group.get("retentionInDays") == 30,
        why=f"{group_name} keeps events {group.get('retentionInDays', 'forever')} days, not 30",
    )

    def stream():
        events = logs.get_log_events(
            logGroupName=group_name, logStreamName="web-1", startFromHead=True, limit=1000
        )["events"]
        messages = []
        for event in events:
            try:
                messages.append(json.loads(event["message"]))
            except ValueError:
                messages.append(None)
        assert messages[-len(LOG_LINES) :] == LOG_LINES, "web-1 should end with the six LOG_LINES"
        return True

    check.part("the six events in the stream web-1", stream)

    def stored_filter():
        filters = logs.describe_metric_filters(logGroupName=group_name)["metricFilters"]
        found = next((f for f in filters if f["filterName"] == f"{prefix}-checkout-errors"), None)
        assert found, f"there is no metric filter {prefix}-checkout-errors on {group_name}"
        assert "".join(found["filterPattern"].split()) == '{$.level="ERROR"}', (
            f"the filter pattern is {found['filterPattern']!r}"
        )
        tf = found["metricTransformations"][0]
        assert (tf["metricName"], tf["metricNamespace"], tf["metricValue"]) == (
            "CheckoutErrors",
            f"{prefix}/Checkout",
            "1",
        ), "the filter should publish 1 to CheckoutErrors in your namespace"
        assert tf.get("defaultValue") == 0 and tf.get("unit") == "Count", (
            "the filter's default value should be 0 and its unit Count"
        )
        return True

    stored = check.part("the metric filter", stored_filter)
    check.part(
        "datapoints in CheckoutErrors",
        lambda: bool(
            cloudwatch.list_metrics(Namespace=f"{prefix}/Checkout", MetricName="CheckoutErrors")[
                "Metrics"
            ]
        ),
        requires=stored,
        why="CheckoutErrors has no datapoints: put the log events after creating the filter",
    )
    return check


def _alarm_names(rule):
    return re.findall(r'ALARM\(\s*"?([^")\s]+)"?\s*\)', rule or "")


@state_check("ex5_state")
def errors_and_composite(aws, prefix):
    """The errors alarm (4 parts) and the composite alarm (2 parts), one share each."""
    cloudwatch = aws.client("cloudwatch")
    topic = _topic_arn(aws, prefix)
    errors = f"{prefix}-checkout-errors"
    latency = f"{prefix}-checkout-latency"
    check = Parts()

    def alarm():
        return _metric_alarm(cloudwatch, errors)

    check.part(
        "the errors alarm's metric",
        lambda: (
            (alarm()["Namespace"], alarm()["MetricName"], alarm().get("Dimensions") or [])
            == (f"{prefix}/Checkout", "CheckoutErrors", [])
        ),
        why="the errors alarm should watch CheckoutErrors in your namespace, with no dimensions",
    )
    check.part(
        "Sum >= 5 over 60 s",
        lambda: (
            (
                alarm().get("Statistic"),
                alarm()["Period"],
                alarm()["EvaluationPeriods"],
                alarm()["Threshold"],
                alarm()["ComparisonOperator"],
            )
            == ("Sum", 60, 1, 5, "GreaterThanOrEqualToThreshold")
        ),
        why="the errors alarm should fire when the Sum over one 60 s period is >= 5",
    )
    check.part(
        "the errors alarm's missing data",
        lambda: alarm().get("TreatMissingData") == "notBreaching",
        why="missing data should be notBreaching",
    )
    check.part(
        "the errors alarm's notification",
        lambda: topic is not None and topic in alarm().get("AlarmActions", []),
        why=f"the errors alarm should notify {prefix}-oncall",
    )

    def composite():
        found = cloudwatch.describe_alarms(
            AlarmNames=[f"{prefix}-checkout-degraded"], AlarmTypes=["CompositeAlarm"]
        )["CompositeAlarms"]
        assert found, f"there is no composite alarm named {prefix}-checkout-degraded"
        return found[0]

    def both():
        rule = composite()["AlarmRule"]
        return (
            sorted(_alarm_names(rule)) == sorted([errors, latency])
            and re.search(r"\bAND\b", rule) is not None
            and re.search(r"\b(OR|NOT)\b", rule) is None
        )

    check.part(
        "the composite rule",
        both,
        weight=2,
        why="the composite alarm's rule should be ALARM(latency) AND ALARM(errors)",
    )
    check.part(
        "the composite alarm's notification",
        lambda: topic is not None and topic in composite().get("AlarmActions", []),
        weight=2,
        why=f"the composite alarm should notify {prefix}-oncall",
    )
    return check


@state_check("ex6_state")
def schedule_and_rule(aws, prefix):
    """The schedule's expression, window and target (3 parts), the rule's pattern and target."""
    scheduler = aws.client("scheduler")
    events = aws.client("events")
    iam = aws.client("iam")
    account = aws.client("sts").get_caller_identity()["Account"]
    region = events.meta.region_name
    check = Parts()

    def schedule():
        return scheduler.get_schedule(Name=f"{prefix}-nightly-report", GroupName=f"{prefix}-ops")

    check.part(
        "the nightly cron expression",
        lambda: schedule()["ScheduleExpression"] == "cron(30 2 * * ? *)",
        why="the schedule should run cron(30 2 * * ? *)",
    )
    check.part(
        "the Paris time zone and 15-minute window",
        lambda: (
            schedule().get("ScheduleExpressionTimezone") == "Europe/Paris"
            and schedule().get("FlexibleTimeWindow")
            == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
        ),
        why="the schedule should run in Europe/Paris with a 15-minute flexible window",
    )

    def target():
        jobs_arn, _ = _queue_arn(aws, f"{prefix}-jobs")
        found = schedule()["Target"]
        role = iam.get_role(RoleName=f"{prefix}-scheduler")["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        trusted = any(
            "scheduler.amazonaws.com" in _as_list((st.get("Principal") or {}).get("Service"))
            for st in _as_list(trust.get("Statement"))
            if isinstance(st.get("Principal"), dict)
        )
        return (
            found["Arn"] == jobs_arn
            and found.get("RoleArn") == role["Arn"]
            and trusted
            and json.loads(found.get("Input") or "null") == REPORT_INPUT
            and found.get("RetryPolicy", {}).get("MaximumRetryAttempts") == 2
        )

    check.part(
        "the schedule's target",
        target,
        why="the schedule should send REPORT_INPUT to the jobs queue with the scheduler role "
        "(trusting scheduler.amazonaws.com) and 2 retries",
    )

    def sample(name, state):
        return json.dumps(
            {
                "version": "0",
                "id": "7bf73129-1428-4cd3-a780-95db273d1602",
                "detail-type": "CloudWatch Alarm State Change",
                "source": "aws.cloudwatch",
                "account": account,
                "time": "2026-01-15T02:31:00Z",
                "region": region,
                "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"],
                "detail": {"alarmName": name, "state": {"value": state}},
            }
        )

    def pattern():
        rule = events.describe_rule(Name=f"{prefix}-alarm-changes")
        text = rule.get("EventPattern")
        assert text, f"the rule {prefix}-alarm-changes has no event pattern"

        def matches(event):
            return events.test_event_pattern(EventPattern=text, Event=event)["Result"]

        return (
            matches(sample(f"{prefix}-checkout-errors", "ALARM"))
            and matches(sample(f"{prefix}-checkout-latency", "ALARM"))
            and not matches(sample(f"{prefix}-checkout-errors", "OK"))
            and not matches(sample("billing-errors", "ALARM"))
        )

    check.part(
        "the alarm-change pattern",
        pattern,
        why="the rule should match your checkout alarms entering ALARM, and nothing else",
    )

    def rule_target():
        pager_arn, _ = _queue_arn(aws, f"{prefix}-pager")
        targets = events.list_targets_by_rule(Rule=f"{prefix}-alarm-changes")["Targets"]
        return any(t["Arn"] == pager_arn for t in targets)

    check.part("the rule's pager target", rule_target, why="the rule should target the pager")
    return check


def _template(cfn, **kwargs):
    body = cfn.get_template(**kwargs)["TemplateBody"]
    return json.loads(body) if isinstance(body, str) else body


@state_check("ex7_state")
def checkout_stack(aws, prefix):
    """Status, parameters, resources (2), the condition, outputs and export (2), DeletionPolicy."""
    cfn = aws.client("cloudformation")
    stack_name = f"{prefix}-checkout-ops"
    stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    assert stacks, f"there is no stack {stack_name}"
    stack = stacks[0]
    check = Parts()
    complete = check.part(
        "the deployed stack",
        stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"),
        why=f"the stack is {stack['StackStatus']}",
    )
    template = _template(cfn, StackName=stack_name)
    resources = template.get("Resources", {})
    params = template.get("Parameters", {})
    values = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    check.part(
        "the parameters",
        lambda: (
            values == {"Env": "staging", "ErrorThreshold": "5"}
            and sorted(params["Env"].get("AllowedValues", [])) == ["prod", "staging"]
            and params["ErrorThreshold"].get("Type") == "Number"
            and int(params["ErrorThreshold"].get("MinValue")) == 1
        ),
        requires=complete,
        why="Env (staging or prod) and ErrorThreshold (a Number, at least 1) should be "
        "declared and the stack run with staging and 5",
    )

    def deployed():
        kinds = {
            r["LogicalResourceId"]: r["ResourceType"]
            for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
        }
        assert kinds.get("OnCallTopic") == "AWS::SNS::Topic", "the stack has no OnCallTopic"
        assert kinds.get("AppLogs") == "AWS::Logs::LogGroup", "the stack has no AppLogs"
        cloudwatch = aws.client("cloudwatch")
        alarm = _metric_alarm(cloudwatch, f"{stack_name}-errors")
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm.get("Statistic")) == (
            5,
            "GreaterThanOrEqualToThreshold",
            "Sum",
        ), "the stack's alarm should fire at Sum >= ErrorThreshold"
        assert any(a.endswith(f":{stack_name}-oncall") for a in alarm.get("AlarmActions", [])), (
            "the stack's alarm should notify the stack's topic"
        )
        retention = resources["AppLogs"]["Properties"].get("RetentionInDays")
        assert retention == {"Fn::FindInMap": ["RetentionByEnv", {"Ref": "Env"}, "Days"]}, (
            "AppLogs should take RetentionInDays from RetentionByEnv with Fn::FindInMap"
        )
        days = {
            env: int((v or {}).get("Days", 0))
            for env, v in template.get("Mappings", {}).get("RetentionByEnv", {}).items()
        }
        assert days == {"staging": 14, "prod": 90}, f"RetentionByEnv gives {days}"
        return True

    check.part("the topic, log group and alarm", deployed, weight=2, requires=complete)

    def conditional():
        kinds = {
            r["LogicalResourceId"]
            for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
        }
        condition = template.get("Conditions", {}).get("IsProd")
        return (
            resources.get("ProdPager", {}).get("Condition") == "IsProd"
            and condition == {"Fn::Equals": [{"Ref": "Env"}, "prod"]}
            and "ProdPager" not in kinds
        )

    check.part(
        "the prod-only pager",
        conditional,
        requires=complete,
        why="ProdPager should carry Condition IsProd (Env equals prod) and not exist in staging",
    )

    def outputs():
        found = {o["OutputKey"]: o for o in stack.get("Outputs", [])}
        exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
        topic = found.get("TopicArn", {}).get("OutputValue", "")
        return (
            topic.endswith(f":{stack_name}-oncall")
            and exports.get(f"{stack_name}-TopicArn") == topic
            and found.get("LogGroupName", {}).get("OutputValue") == f"/{stack_name}/app"
        )

    check.part(
        "the outputs and the export",
        outputs,
        weight=2,
        requires=complete,
        why="the outputs TopicArn (exported as <stack>-TopicArn) and LogGroupName are missing",
    )
    check.part(
        "DeletionPolicy Retain on the logs",
        lambda: (
            resources["AppLogs"].get("DeletionPolicy") == "Retain"
            and resources["AppLogs"].get("UpdateReplacePolicy") == "Retain"
        ),
        requires=complete,
        why="AppLogs should have DeletionPolicy and UpdateReplacePolicy Retain",
    )
    return check


@state_check("ex8_state")
def change_set(aws, prefix):
    """The change set computed (1/4), its changes (1/4), its parameters (1/4), not executed."""
    cfn = aws.client("cloudformation")
    stack_name = f"{prefix}-checkout-ops"
    described = cfn.describe_change_set(StackName=stack_name, ChangeSetName="raise-threshold")
    check = Parts()
    ready = check.part(
        "the computed change set",
        described["Status"] == "CREATE_COMPLETE" and described["ExecutionStatus"] == "AVAILABLE",
        why=f"the change set is {described['Status']} / {described['ExecutionStatus']}",
    )
    changes = {
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
        for c in described.get("Changes", [])
    }
    check.part(
        "its changes",
        {("Add", "ReportQueue"), ("Modify", "ErrorAlarm")} <= changes,
        requires=ready,
        why="the change set should add ReportQueue and modify ErrorAlarm",
    )
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in described.get("Parameters", [])}
    check.part(
        "its parameters",
        params == {"Env": "staging", "ErrorThreshold": "10"},
        requires=ready,
        why=f"the change set's parameters are {params}; keep Env, set ErrorThreshold to 10",
    )

    def untouched():
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        values = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
        kinds = {
            r["LogicalResourceId"]
            for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
        }
        return values.get("ErrorThreshold") == "5" and "ReportQueue" not in kinds

    check.part(
        "the stack left as it was",
        untouched,
        requires=ready,
        why="the stack was updated: leave the change set for review",
    )
    return check


@state_check("ex9_state")
def canary_alias(aws, prefix):
    """Two published versions (1/3), the alias on the first (1/3), 10 % to the second (1/3)."""
    lam = aws.client("lambda")
    function = f"{prefix}-checkout-api"
    versions = [
        v
        for v in lam.list_versions_by_function(FunctionName=function)["Versions"]
        if v["Version"] != "$LATEST"
    ]
    check = Parts()
    published = check.part(
        "two published versions",
        len({v["CodeSha256"] for v in versions}) >= 2,
        why=f"{function} should have two published versions with different code",
    )
    alias = lam.get_alias(FunctionName=function, Name="live")
    numbers = sorted((v["Version"] for v in versions), key=int)
    old, new = (numbers[0], numbers[-1]) if numbers else (None, None)
    check.part(
        "the alias on the old version",
        alias["FunctionVersion"] == old,
        requires=published,
        why="the alias live should point at the first version",
    )
    weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
    check.part(
        "10 % to the new version",
        weights == {new: 0.1},
        requires=published,
        why=f"the alias routes {weights}; send 0.1 of the calls to the second version",
    )
    return check
