"""Emulator benchmark: cold start to healthy, resident memory after the smoke matrix, and latency
per call for each API family, all measured in one run on this machine.

    .venv/bin/python benchmarks/emulator.py [--calls 50]

Prints absolute numbers and ratios against the fastest call (S3 HEAD), so runs on different
machines compare by their ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from grader import emulator as emu
from grader.config import EmulatorConfig, load
from grader.statecheck import session_for
from tests.conftest import free_port, new_account_id
from tests.emulator.test_smoke import CALLS


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(
                next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
            )
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, StopIteration):
            continue
        todo += [int(c) for c in children]
    return total / 1024


def timed(call, n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="calls per latency measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        config = load(EmulatorConfig, "emulator", home=Path(home), port=free_port())
        instance = emu.create(config)
        started = time.perf_counter()
        instance.start()
        cold = time.perf_counter() - started
        pid = instance.status().pid
        idle = rss_mib(pid)
        try:
            account = new_account_id()
            aws = session_for(endpoint_url=instance.endpoint_url, account_id=account)
            for api, call in CALLS.items():
                if call is not None:
                    call(aws.client(api), account)
            after_matrix = rss_mib(pid)
            s3, sqs, ddb, lam = (aws.client(n) for n in ("s3", "sqs", "dynamodb", "lambda"))
            queue = sqs.create_queue(QueueName="bench")["QueueUrl"]
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("app.py", "def handler(e, c):\n    return e\n")
            lam.create_function(
                FunctionName="bench", Runtime="python3.12", Role=f"arn:aws:iam::{account}:role/r",
                Handler="app.handler", Code={"ZipFile": buffer.getvalue()},
            )  # fmt: skip
            lam.get_waiter("function_active_v2").wait(FunctionName="bench")
            first = time.perf_counter()
            lam.invoke(FunctionName="bench", Payload=b"{}")
            lambda_cold = (time.perf_counter() - first) * 1000
            latencies = {
                "s3 head_bucket (community)": lambda: s3.head_bucket(Bucket=f"smoke-{account}"),
                "sqs send_message (community)": lambda: sqs.send_message(
                    QueueUrl=queue, MessageBody="x"
                ),
                "dynamodb get_item (extension, moto)": lambda: ddb.get_item(
                    TableName="t", Key={"pk": {"S": "a"}}
                ),
                "lambda invoke, warm (extension executor)": lambda: lam.invoke(
                    FunctionName="bench", Payload=json.dumps({"k": 1}).encode()
                ),
            }
            measured = {name: timed(call, args.calls) for name, call in latencies.items()}
            after_lambda = rss_mib(pid)
        finally:
            instance.stop()
    base = min(measured.values())
    print(f"cold start to healthy          {cold:8.2f} s")
    print(f"resident memory, idle          {idle:8.0f} MiB")
    print(
        f"resident memory, after matrix  {after_matrix:8.0f} MiB  ({after_matrix / idle:.1f}x idle)"
    )
    print(
        f"resident memory, after lambda  {after_lambda:8.0f} MiB  ({after_lambda / idle:.1f}x idle)"
    )
    print(f"lambda first invoke (cold)     {lambda_cold:8.1f} ms")
    print(f"latency per call, median of {args.calls} (ratio to fastest):")
    for name, ms in measured.items():
        print(f"  {name:42} {ms:7.2f} ms  {ms / base:5.1f}x")


if __name__ == "__main__":
    main()
