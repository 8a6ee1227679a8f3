"""Moto-backed LocalStack providers for the APIs the community build cannot serve offline.

Each provider hands every operation of the botocore service model straight to LocalStack's bundled
moto (``moto-ext``) and returns moto's HTTP response unchanged. Account and region isolation come
from LocalStack's request context, exactly as for LocalStack's own moto-backed services.
"""

from __future__ import annotations

from localstack.aws.api import RequestContext, ServiceRequest
from localstack.aws.skeleton import Skeleton
from localstack.aws.spec import load_service
from localstack.http import Response
from localstack.services.moto import dispatch_to_moto
from localstack.services.plugins import Service, aws_provider

PROVIDER_NAME = "cloudlabs"


def _forward_to_moto(context: RequestContext, _request: ServiceRequest) -> Response:
    return dispatch_to_moto(context)


def moto_service(api: str) -> Service:
    """A LocalStack service whose every operation is served by moto."""
    model = load_service(api)
    dispatch_table = {name: _forward_to_moto for name in model.operation_names}
    return Service(name=api, skeleton=Skeleton(model, dispatch_table))


def _provider(api: str):
    @aws_provider(api=api, name=PROVIDER_NAME)
    def factory() -> Service:
        return moto_service(api)

    return factory


dynamodb = _provider("dynamodb")
dynamodbstreams = _provider("dynamodbstreams")
kinesis = _provider("kinesis")
elbv2 = _provider("elbv2")
elb = _provider("elb")
autoscaling = _provider("autoscaling")
ecs = _provider("ecs")
ecr = _provider("ecr")
efs = _provider("efs")
ebs = _provider("ebs")
cloudfront = _provider("cloudfront")
cognito_idp = _provider("cognito-idp")
application_autoscaling = _provider("application-autoscaling")
rds = _provider("rds")
elasticache = _provider("elasticache")
