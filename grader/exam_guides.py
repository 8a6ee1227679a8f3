"""The two exams the course prepares for, as their published exam guides describe them: the
content domains with their weights, the task statements, the number of items and the time.

Sources (checked 2026-12-04): the AWS Certified Solutions Architect – Associate (SAA-C03) and
AWS Certified Developer – Associate (DVA-C02) exam guides on docs.aws.amazon.com
(aws-certification/latest/examguides). Both exams have 65 items (50 scored, 15 unscored that
are not identified) in 130 minutes, and report a scaled score from 100 to 1,000 with 720 to pass."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Domain:
    number: str
    name: str
    weight: float  #: share of the scored items


@dataclasses.dataclass(frozen=True)
class Exam:
    name: str
    title: str
    items: int
    minutes: int
    domains: tuple[Domain, ...]
    tasks: dict[str, str]  #: task statement number ("1.1") -> its wording

    def domain(self, number: str) -> Domain:
        return next(d for d in self.domains if d.number == number)


SAA_C03 = Exam(
    name="SAA-C03",
    title="AWS Certified Solutions Architect – Associate",
    items=65,
    minutes=130,
    domains=(
        Domain("1", "Design Secure Architectures", 0.30),
        Domain("2", "Design Resilient Architectures", 0.26),
        Domain("3", "Design High-Performing Architectures", 0.24),
        Domain("4", "Design Cost-Optimized Architectures", 0.20),
    ),
    tasks={
        "1.1": "Design secure access to AWS resources",
        "1.2": "Design secure workloads and applications",
        "1.3": "Determine appropriate data security controls",
        "2.1": "Design scalable and loosely coupled architectures",
        "2.2": "Design highly available and/or fault-tolerant architectures",
        "3.1": "Determine high-performing and/or scalable storage solutions",
        "3.2": "Design high-performing and elastic compute solutions",
        "3.3": "Determine high-performing database solutions",
        "3.4": "Determine high-performing and/or scalable network architectures",
        "3.5": "Determine high-performing data ingestion and transformation solutions",
        "4.1": "Design cost-optimized storage solutions",
        "4.2": "Design cost-optimized compute solutions",
        "4.3": "Design cost-optimized database solutions",
        "4.4": "Design cost-optimized network architectures",
    },
)

DVA_C02 = Exam(
    name="DVA-C02",
    title="AWS Certified Developer – Associate",
    items=65,
    minutes=130,
    domains=(
        Domain("1", "Development with AWS Services", 0.32),
        Domain("2", "Security", 0.26),
        Domain("3", "Deployment", 0.24),
        Domain("4", "Troubleshooting and Optimization", 0.18),
    ),
    tasks={
        "1.1": "Develop code for applications hosted on AWS",
        "1.2": "Develop code for AWS Lambda",
        "1.3": "Use data stores in application development",
        "2.1": "Implement authentication and/or authorization for applications and AWS services",
        "2.2": "Implement encryption by using AWS services",
        "2.3": "Manage sensitive data in application code",
        "3.1": "Prepare application artifacts to be deployed to AWS",
        "3.2": "Test applications in development environments",
        "3.3": "Automate deployment testing",
        "3.4": "Deploy code by using AWS CI/CD services",
        "4.1": "Assist in a root cause analysis",
        "4.2": "Instrument code for observability",
        "4.3": "Optimize applications by using AWS services and features",
    },
)

EXAMS = {exam.name: exam for exam in (SAA_C03, DVA_C02)}
