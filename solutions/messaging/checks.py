"""State checks for the messaging lab, run by the grader outside the student's kernel.

Every check reads only what the emulator really stores and returns: queue attributes (including
queue policies, which the emulator stores but does not enforce), SNS subscription attributes,
Kinesis stream metadata and records, and EventBridge rules (the stored event pattern is evaluated
with TestEventPattern).
"""

from __future__ import annotations

import json

from grader.statecheck import Parts, state_check


def _queue(aws, name: str) -> tuple[object, str]:
    sqs = aws.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except Exception as exc:
        raise AssertionError(f"there is no queue named {name}") from exc
    return sqs, url


def _attrs(sqs, url: str) -> dict[str, str]:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _policy_allows(
    policy_text: str | None, service: str, resource: str, source_arn: str | None = None
) -> bool:
    """True when one Allow statement lets `service` call sqs:SendMessage on `resource`
    (and, when given, only for aws:SourceArn == source_arn)."""
    if not policy_text:
        return False
    policy = json.loads(policy_text)
    for st in _as_list(policy.get("Statement")):
        principal = st.get("Principal") or {}
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        actions = _as_list(st.get("Action"))
        resources = _as_list(st.get("Resource"))
        if st.get("Effect") != "Allow" or service not in services:
            continue
        if not ({"sqs:SendMessage", "sqs:*"} & set(actions)):
            continue
        if resource not in resources:
            continue
        if source_arn is not None:
            cond = st.get("Condition") or {}
            pinned = [cond.get(op, {}).get("aws:SourceArn") for op in ("ArnEquals", "ArnLike")]
            if source_arn not in pinned:
                continue
        return True
    return False


@state_check("ex1_state")
def orders_queue(aws, prefix):
    """A standard queue {prefix}-orders keeping messages 7 days."""
    sqs, url = _queue(aws, f"{prefix}-orders")
    attrs = _attrs(sqs, url)
    assert attrs.get("FifoQueue", "false") == "false", "the orders queue must be a standard queue"
    assert attrs.get("MessageRetentionPeriod") == "604800", (
        f"MessageRetentionPeriod is {attrs.get('MessageRetentionPeriod')} s, not 7 days"
    )


@state_check("ex2_state")
def orders_visibility(aws, prefix):
    """The orders queue has a 45-second visibility timeout."""
    sqs, url = _queue(aws, f"{prefix}-orders")
    value = _attrs(sqs, url).get("VisibilityTimeout")
    assert value == "45", f"VisibilityTimeout is {value} s, not 45"


@state_check("ex3_state")
def long_polling_and_delay(aws, prefix):
    """Long polling at 20 s on the orders queue; a 10-minute delay on the follow-up queue."""
    sqs = aws.client("sqs")

    def wait_20():
        _, url = _queue(aws, f"{prefix}-orders")
        return _attrs(sqs, url).get("ReceiveMessageWaitTimeSeconds") == "20"

    def delay_600():
        _, url = _queue(aws, f"{prefix}-order-followups")
        return _attrs(sqs, url).get("DelaySeconds") == "600"

    check = Parts()
    check.part(
        "long polling on the orders queue",
        wait_20,
        why="the orders queue does not long-poll for 20 s by default",
    )
    check.part(
        "the 10-minute delay on the follow-up queue",
        delay_600,
        why=f"{prefix}-order-followups does not delay messages by 600 s",
    )
    return check


@state_check("ex4_state")
def dead_letter_queue(aws, prefix):
    """Redrive from the orders queue to its DLQ after 3 receives; the DLQ allows only that queue
    and holds the poison message."""
    sqs, orders_url = _queue(aws, f"{prefix}-orders")
    _, dlq_url = _queue(aws, f"{prefix}-orders-dlq")
    orders = _attrs(sqs, orders_url)
    dlq = _attrs(sqs, dlq_url)

    def redrive():
        policy = json.loads(orders.get("RedrivePolicy") or "{}")
        return (
            policy.get("deadLetterTargetArn") == dlq["QueueArn"]
            and int(policy.get("maxReceiveCount", 0)) == 3
        )

    def allow():
        policy = json.loads(dlq.get("RedriveAllowPolicy") or "{}")
        return policy.get("redrivePermission") == "byQueue" and policy.get("sourceQueueArns") == [
            orders["QueueArn"]
        ]

    def holds_message():
        return (
            int(dlq.get("ApproximateNumberOfMessages", 0))
            + int(dlq.get("ApproximateNumberOfMessagesNotVisible", 0))
        ) >= 1

    check = Parts()
    check.part(
        "the redrive policy",
        redrive,
        weight=2,
        why="the orders queue does not redrive to the DLQ with maxReceiveCount 3",
    )
    check.part(
        "the redrive allow policy",
        allow,
        why="the DLQ's redrive allow policy does not name only the orders queue",
    )
    check.part("the poison message in the DLQ", holds_message, why="the DLQ holds no message")
    return check


@state_check("ex5_state")
def payments_fifo(aws, prefix):
    """A FIFO queue {prefix}-payments.fifo with content-based dedup and high-throughput mode."""
    sqs, url = _queue(aws, f"{prefix}-payments.fifo")
    attrs = _attrs(sqs, url)
    check = Parts()
    check.part(
        "a FIFO queue",
        attrs.get("FifoQueue") == "true",
        weight=4,
        why="the payments queue is not FIFO",
    )
    check.part(
        "content-based deduplication",
        attrs.get("ContentBasedDeduplication") == "true",
        weight=3,
        why="content-based deduplication is off",
    )
    check.part(
        "high-throughput mode",
        attrs.get("DeduplicationScope") == "messageGroup"
        and attrs.get("FifoThroughputLimit") == "perMessageGroupId",
        weight=3,
        why="high-throughput mode is off (deduplication per message group, throughput per "
        "message group id)",
    )
    return check


def _topic_arn(aws, name: str) -> str:
    sns = aws.client("sns")
    arns = []
    for page in sns.get_paginator("list_topics").paginate():
        arns += [t["TopicArn"] for t in page["Topics"]]
    found = [a for a in arns if a.split(":")[-1] == name]
    assert found, f"there is no SNS topic named {name}"
    return found[0]


@state_check("ex6_state")
def topic_and_queue_policies(aws, prefix):
    """The topic exists and both queues' policies let exactly that topic send to them."""
    topic = _topic_arn(aws, f"{prefix}-order-events")
    sqs = aws.client("sqs")

    def allows(name):
        def test():
            _, url = _queue(aws, name)
            attrs = _attrs(sqs, url)
            return _policy_allows(
                attrs.get("Policy"), "sns.amazonaws.com", attrs["QueueArn"], topic
            )

        return test

    check = Parts()
    for queue in (f"{prefix}-billing", f"{prefix}-warehouse"):
        check.part(
            f"{queue}'s queue policy",
            allows(queue),
            why=f"{queue}'s policy does not let the topic send",
        )
    return check


@state_check("ex7_state")
def fanout_subscriptions(aws, prefix):
    """Billing subscribed with raw delivery; warehouse subscribed with the event_type filter."""
    topic = _topic_arn(aws, f"{prefix}-order-events")
    sns = aws.client("sns")
    sqs = aws.client("sqs")
    subs = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        subs += page["Subscriptions"]

    def attrs_for(queue_name):
        _, url = _queue(aws, queue_name)
        arn = _attrs(sqs, url)["QueueArn"]
        for sub in subs:
            if (
                sub["Protocol"] == "sqs"
                and sub["Endpoint"] == arn
                and sub["SubscriptionArn"].startswith("arn:")
            ):
                return sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])[
                    "Attributes"
                ]
        raise AssertionError(f"no SQS subscription of the topic for {queue_name}")

    def billing_raw():
        return attrs_for(f"{prefix}-billing").get("RawMessageDelivery") == "true"

    def warehouse_filter():
        attrs = attrs_for(f"{prefix}-warehouse")
        policy = json.loads(attrs.get("FilterPolicy") or "{}")
        return (
            attrs.get("FilterPolicyScope", "MessageAttributes") == "MessageAttributes"
            and set(policy) == {"event_type"}
            and policy["event_type"] == ["order_placed"]
        )

    check = Parts()
    check.part(
        "the billing subscription with raw delivery",
        billing_raw,
        why="the billing queue's subscription does not use raw message delivery",
    )
    check.part(
        "the warehouse subscription with its filter",
        warehouse_filter,
        why="the warehouse queue's subscription does not filter on event_type order_placed",
    )
    return check


@state_check("ex8_state")
def clickstream(aws, prefix):
    """The clickstream stream: 2 open shards, 48-hour retention, the click records stored."""
    kinesis = aws.client("kinesis")
    name = f"{prefix}-clickstream"
    try:
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except Exception as exc:
        raise AssertionError(f"there is no Kinesis stream named {name}") from exc

    def count_records():
        total = 0
        for shard in kinesis.list_shards(StreamName=name)["Shards"]:
            it = kinesis.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for _ in range(50):
                out = kinesis.get_records(ShardIterator=it, Limit=1000)
                total += len(out["Records"])
                it = out.get("NextShardIterator")
                if not out["Records"] or not it:
                    break
        return total

    check = Parts()
    check.part(
        "2 open shards",
        summary.get("OpenShardCount") == 2,
        weight=3,
        why="the stream does not have 2 open shards",
    )
    check.part(
        "48-hour retention",
        summary.get("RetentionPeriodHours") == 48,
        weight=3,
        why="retention is not 48 hours",
    )
    check.part(
        "the 15 click records",
        lambda: count_records() >= 15,
        weight=4,
        why="the stream holds fewer than the 15 click records",
    )
    return check


@state_check("ex9_state")
def eventbridge_rule(aws, prefix):
    """The big-orders rule on the orders bus matches the right events and targets the queue."""
    events = aws.client("events")
    bus, rule_name = f"{prefix}-orders-bus", f"{prefix}-big-orders"
    try:
        rule = events.describe_rule(Name=rule_name, EventBusName=bus)
    except Exception as exc:
        raise AssertionError(f"there is no rule {rule_name} on the bus {bus}") from exc
    _, url = _queue(aws, f"{prefix}-big-orders")
    sqs = aws.client("sqs")
    qattrs = _attrs(sqs, url)

    def matches(source, detail_type, total):
        event = {
            "id": "1",
            "account": "123456789012",
            "source": source,
            "detail-type": detail_type,
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"order_id": "x", "total": total},
        }
        return events.test_event_pattern(
            EventPattern=rule["EventPattern"], Event=json.dumps(event)
        )["Result"]

    def pattern_ok():
        return (
            rule.get("State") == "ENABLED"
            and matches("com.shop.orders", "OrderPlaced", 100)
            and matches("com.shop.orders", "OrderPlaced", 5000)
            and not matches("com.shop.orders", "OrderPlaced", 99)
            and not matches("com.shop.returns", "OrderPlaced", 500)
            and not matches("com.shop.orders", "OrderCancelled", 500)
        )

    def target_ok():
        targets = events.list_targets_by_rule(Rule=rule_name, EventBusName=bus)["Targets"]
        return qattrs["QueueArn"] in [t["Arn"] for t in targets]

    def policy_ok():
        return _policy_allows(qattrs.get("Policy"), "events.amazonaws.com", qattrs["QueueArn"])

    check = Parts()
    check.part(
        "the event pattern",
        pattern_ok,
        weight=2,
        why="the rule is disabled or its event pattern does not select exactly the big "
        "OrderPlaced events",
    )
    check.part("the queue target", target_ok, why="the rule does not target the big-orders queue")
    check.part(
        "the queue policy for EventBridge",
        policy_ok,
        why="the big-orders queue policy does not let events.amazonaws.com send",
    )
    return check
