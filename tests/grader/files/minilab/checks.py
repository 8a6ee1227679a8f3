"""State checks of the minilab (tests only)."""

from grader.statecheck import state_check


@state_check("ex1_state")
def reports_bucket_versioned(aws, prefix):
    status = aws.client("s3").get_bucket_versioning(Bucket=f"{prefix}-reports").get("Status")
    assert status == "Enabled", f"versioning on {prefix}-reports is {status or 'off'}"


@state_check("ex2_state")
def jobs_queue(aws, prefix):
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{prefix}-jobs")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45", "the visibility timeout should be 45 seconds"
    waiting = int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )
    return 1.0 if waiting else 0.5
