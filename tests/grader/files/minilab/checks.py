"""State checks of the minilab (tests only)."""

from grader.statecheck import Parts, state_check


@state_check("ex1_state")
def reports_bucket_versioned(aws, prefix):
    status = aws.client("s3").get_bucket_versioning(Bucket=f"{prefix}-reports").get("Status")
    assert status == "Enabled", f"versioning on {prefix}-reports is {status or 'off'}"


@state_check("ex2_state")
def jobs_queue(aws, prefix):
    """The queue with a 45 s visibility timeout (half), then a message in it (half)."""
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{prefix}-jobs")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    waiting = int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )
    check = Parts()
    timeout = check.part(
        "the 45-second visibility timeout",
        attrs["VisibilityTimeout"] == "45",
        why="the visibility timeout should be 45 seconds",
    )
    check.part(
        "a message in the queue", waiting, requires=timeout, why="the queue holds no message"
    )
    return check
