"""State checks for the compute lab, run by the grader outside the student's kernel."""

import base64

from grader.statecheck import Parts, state_check

PARTNER_ACCOUNT = "111122223333"
OFFICE_CIDR = "203.0.113.0/24"


def _tags(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", resource.get("TagSet", []))}


def _sg(ec2, name):
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])[
        "SecurityGroups"
    ]
    assert groups, f"no security group named {name}"
    return groups[0]


def _instances(ec2, name):
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])[
        "Reservations"
    ]
    return [i for r in reservations for i in r["Instances"]]


def _web1(ec2, prefix):
    running = [i for i in _instances(ec2, f"{prefix}-web-1") if i["State"]["Name"] != "terminated"]
    assert running, f"no live instance tagged Name={prefix}-web-1"
    return running[0]


def _lt_data(ec2, prefix):
    versions = ec2.describe_launch_template_versions(
        LaunchTemplateName=f"{prefix}-web-lt", Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    return versions[0]["LaunchTemplateData"]


@state_check("ex1_state")
def security_groups(aws, prefix):
    """The ALB group is open on 80/443; the web group takes 80 from the ALB group and 22 from the office."""
    ec2 = aws.client("ec2")
    alb = _sg(ec2, f"{prefix}-alb-sg")
    web = _sg(ec2, f"{prefix}-web-sg")
    world = {
        (p.get("FromPort"), p.get("ToPort"))
        for p in alb["IpPermissions"]
        if any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
    }
    assert {(80, 80), (443, 443)} <= world, f"{prefix}-alb-sg must allow 80 and 443 from 0.0.0.0/0"
    http = [p for p in web["IpPermissions"] if p.get("FromPort") == 80]
    assert http and [g["GroupId"] for g in http[0].get("UserIdGroupPairs", [])] == [
        alb["GroupId"]
    ], f"port 80 on {prefix}-web-sg must reference {prefix}-alb-sg"
    ssh = [p for p in web["IpPermissions"] if p.get("FromPort") == 22]
    assert ssh and [r["CidrIp"] for r in ssh[0].get("IpRanges", [])] == [OFFICE_CIDR], (
        f"port 22 on {prefix}-web-sg must come from {OFFICE_CIDR} only"
    )
    for p in web["IpPermissions"]:
        assert all(r["CidrIp"] != "0.0.0.0/0" for r in p.get("IpRanges", [])), (
            f"{prefix}-web-sg must not be open to 0.0.0.0/0"
        )


@state_check("ex2_state")
def launch_template(aws, prefix):
    """Key pair plus a launch template with the key, the web group, user data and IMDSv2 required."""
    ec2 = aws.client("ec2")
    keys = ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [f"{prefix}-key"]}])[
        "KeyPairs"
    ]
    assert keys, f"no key pair named {prefix}-key"
    data = _lt_data(ec2, prefix)
    assert data.get("KeyName") == f"{prefix}-key", "the launch template does not use your key pair"
    web = _sg(ec2, f"{prefix}-web-sg")
    assert data.get("SecurityGroupIds") == [web["GroupId"]], (
        "the launch template must use the web group"
    )
    script = base64.b64decode(data.get("UserData", "")).decode(errors="replace")
    assert script.startswith("#!/bin/bash") and "httpd" in script, (
        "the user data is missing or not the bootstrap script"
    )
    assert data.get("MetadataOptions", {}).get("HttpTokens") == "required", "IMDSv2 is not required"


@state_check("ex3_state")
def instance_lifecycle(aws, prefix):
    """web-1 running, web-2 terminated, both launched from the template."""
    ec2 = aws.client("ec2")
    lt_id = ec2.describe_launch_templates(LaunchTemplateNames=[f"{prefix}-web-lt"])[
        "LaunchTemplates"
    ][0]["LaunchTemplateId"]
    web1 = _instances(ec2, f"{prefix}-web-1")
    web2 = _instances(ec2, f"{prefix}-web-2")
    assert any(i["State"]["Name"] == "running" for i in web1), f"{prefix}-web-1 is not running"
    assert web2 and all(i["State"]["Name"] == "terminated" for i in web2), (
        f"{prefix}-web-2 is not terminated"
    )
    for i in web1 + web2:
        assert _tags(i).get("aws:ec2launchtemplate:id") == lt_id, (
            "instances must be launched from the template"
        )


@state_check("ex4_state")
def eni_and_eip(aws, prefix):
    """A tagged ENI attached to web-1 at index 1 and a tagged Elastic IP associated with web-1."""
    ec2 = aws.client("ec2")
    web1 = _web1(ec2, prefix)
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "tag:Name", "Values": [f"{prefix}-mgmt-eni"]}]
    )["NetworkInterfaces"]
    assert enis, f"no network interface tagged Name={prefix}-mgmt-eni"
    att = enis[0].get("Attachment", {})
    assert att.get("InstanceId") == web1["InstanceId"] and att.get("DeviceIndex") == 1, (
        "the ENI must be attached to web-1 as device index 1"
    )
    addrs = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": [f"{prefix}-web-eip"]}])[
        "Addresses"
    ]
    assert addrs, f"no Elastic IP tagged Name={prefix}-web-eip"
    assert addrs[0].get("InstanceId") == web1["InstanceId"], (
        "the Elastic IP is not associated with web-1"
    )


def _data_volume_ok(vol, web1, prefix):
    assert vol, f"no volume tagged Name={prefix}-data"
    assert vol["VolumeType"] == "gp3" and vol["Size"] == 20, "the data volume must be 20 GiB gp3"
    assert vol["AvailabilityZone"] == web1["Placement"]["AvailabilityZone"], (
        "the volume is not in web-1's AZ"
    )
    assert any(a["InstanceId"] == web1["InstanceId"] for a in vol.get("Attachments", [])), (
        "the volume is not attached to web-1"
    )
    return True


def _snapshots_ok(aws, prefix, vol):
    ec2, kms = aws.client("ec2"), aws.client("kms")
    snaps = ec2.describe_snapshots(
        Filters=[{"Name": "tag:Name", "Values": [f"{prefix}-data-snap", f"{prefix}-data-snap-enc"]}]
    )["Snapshots"]
    by_name = {_tags(s)["Name"]: s for s in snaps}
    plain = by_name.get(f"{prefix}-data-snap")
    enc = by_name.get(f"{prefix}-data-snap-enc")
    assert plain and plain["VolumeId"] == vol["VolumeId"], (
        "no snapshot of the data volume tagged -data-snap"
    )
    assert enc and enc.get("Encrypted"), "no encrypted snapshot copy tagged -data-snap-enc"
    aliases = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == f"alias/{prefix}-ebs"]
    assert aliases, f"no KMS alias alias/{prefix}-ebs"
    key_arn = kms.describe_key(KeyId=aliases[0]["TargetKeyId"])["KeyMetadata"]["Arn"]
    assert enc.get("KmsKeyId") == key_arn, "the copy was not encrypted with your lab key"
    return True


@state_check("ex5_state")
def ebs_volume_and_snapshots(aws, prefix):
    """A gp3 20 GiB volume on web-1 (half), then its snapshot and an encrypted copy made with the
    lab key (half)."""
    ec2 = aws.client("ec2")
    web1 = _web1(ec2, prefix)
    vols = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [f"{prefix}-data"]}])[
        "Volumes"
    ]
    vol = vols[0] if vols else None
    check = Parts()
    volume = check.part(
        "the 20 GiB gp3 data volume attached to web-1", lambda: _data_volume_ok(vol, web1, prefix)
    )
    check.part(
        "the snapshot of the data volume and its copy encrypted with your lab key",
        lambda: _snapshots_ok(aws, prefix, vol),
        requires=volume,
    )
    return check


@state_check("ex6_state")
def golden_ami(aws, prefix):
    """A private AMI shared with the partner account, and its copy in us-west-2."""
    ec2 = aws.client("ec2")
    images = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [f"{prefix}-web-ami"]}]
    )["Images"]
    assert images, f"no AMI named {prefix}-web-ami"
    image = images[0]
    perms = ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")[
        "LaunchPermissions"
    ]
    assert {"UserId": PARTNER_ACCOUNT} in perms, f"the AMI is not shared with {PARTNER_ACCOUNT}"
    assert not image.get("Public") and {"Group": "all"} not in perms, "the AMI must not be public"
    west = aws.client("ec2", region_name="us-west-2")
    copies = west.describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [f"{prefix}-web-ami-west"]}]
    )["Images"]
    assert copies, f"no AMI named {prefix}-web-ami-west in us-west-2"


@state_check("ex7_state")
def load_balancer(aws, prefix):
    """ALB + target group (health check and deregistration delay) + forward listener + web-1 registered."""
    elbv2 = aws.client("elbv2")
    ec2 = aws.client("ec2")
    lb = elbv2.describe_load_balancers(Names=[f"{prefix}-alb"])["LoadBalancers"][0]
    assert lb["Type"] == "application" and lb["Scheme"] == "internet-facing", (
        "the ALB must be internet-facing"
    )
    assert lb["SecurityGroups"] == [_sg(ec2, f"{prefix}-alb-sg")["GroupId"]], (
        "the ALB must use the ALB group"
    )
    assert len(lb["AvailabilityZones"]) >= 2, "the ALB must span two Availability Zones"
    tg = elbv2.describe_target_groups(Names=[f"{prefix}-web-tg"])["TargetGroups"][0]
    assert (tg["Protocol"], tg["Port"], tg["HealthCheckPath"]) == ("HTTP", 80, "/health"), (
        "target group settings"
    )
    assert (
        tg["HealthCheckIntervalSeconds"],
        tg["HealthyThresholdCount"],
        tg["UnhealthyThresholdCount"],
    ) == (15, 2, 3), "health check interval/thresholds must be 15/2/3"
    attrs = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])[
            "Attributes"
        ]
    }
    assert attrs.get("deregistration_delay.timeout_seconds") == "30", (
        "the deregistration delay must be 30 s"
    )
    listeners = [
        li
        for li in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        if li["Port"] == 80 and li["Protocol"] == "HTTP"
    ]
    assert listeners, "no HTTP:80 listener"
    action = listeners[0]["DefaultActions"][0]
    assert action["Type"] == "forward" and action.get("TargetGroupArn") == tg["TargetGroupArn"], (
        "the listener must forward to the target group"
    )
    web1 = _web1(ec2, prefix)
    ids = [
        d["Target"]["Id"]
        for d in elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])[
            "TargetHealthDescriptions"
        ]
    ]
    assert web1["InstanceId"] in ids, "web-1 is not registered in the target group"


@state_check("ex8_state")
def auto_scaling_group(aws, prefix):
    """ASG 2/2/4 from the template, behind the target group, ELB health checks, 50 % CPU target tracking."""
    asg = aws.client("autoscaling")
    elbv2 = aws.client("elbv2")
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{prefix}-web-asg"])[
        "AutoScalingGroups"
    ]
    assert groups, f"no Auto Scaling group {prefix}-web-asg"
    g = groups[0]
    assert (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) == (2, 2, 4), (
        "min/desired/max must be 2/2/4"
    )
    assert g.get("LaunchTemplate", {}).get("LaunchTemplateName") == f"{prefix}-web-lt", (
        "the group must use the launch template"
    )
    assert len(g["VPCZoneIdentifier"].split(",")) >= 2, "the group must span two subnets"
    tg_arn = elbv2.describe_target_groups(Names=[f"{prefix}-web-tg"])["TargetGroups"][0][
        "TargetGroupArn"
    ]
    assert g["TargetGroupARNs"] == [tg_arn], "the group must be attached to the target group"
    assert g["HealthCheckType"] == "ELB" and g["HealthCheckGracePeriod"] == 120, (
        "use ELB health checks, 120 s grace"
    )
    policies = asg.describe_policies(AutoScalingGroupName=f"{prefix}-web-asg")["ScalingPolicies"]
    tt = [
        p
        for p in policies
        if p["PolicyName"] == f"{prefix}-cpu50" and p["PolicyType"] == "TargetTrackingScaling"
    ]
    assert tt, f"no target-tracking policy {prefix}-cpu50"
    conf = tt[0]["TargetTrackingConfiguration"]
    assert (
        conf["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ASGAverageCPUUtilization"
    )
    assert float(conf["TargetValue"]) == 50.0, "the target must be 50 % CPU"


@state_check("ex9_state")
def ecs_service(aws, prefix):
    """ECR repo, execution role, cluster, Fargate task definition, 2-task Fargate service."""
    ecr = aws.client("ecr")
    iam = aws.client("iam")
    ecs = aws.client("ecs")
    repo = ecr.describe_repositories(repositoryNames=[f"{prefix}-web"])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"], "scan on push is off"
    attached = iam.list_attached_role_policies(RoleName=f"{prefix}-ecs-exec")["AttachedPolicies"]
    assert any(p["PolicyName"] == "AmazonECSTaskExecutionRolePolicy" for p in attached), (
        "the execution role lacks AmazonECSTaskExecutionRolePolicy"
    )
    td = ecs.describe_task_definition(taskDefinition=f"{prefix}-web")["taskDefinition"]
    assert "FARGATE" in td.get("requiresCompatibilities", []) and td["networkMode"] == "awsvpc", (
        "the task definition must be for Fargate with awsvpc"
    )
    assert td["containerDefinitions"][0]["image"].startswith(repo["repositoryUri"]), (
        "the image must come from your repository"
    )
    services = ecs.describe_services(cluster=f"{prefix}-cluster", services=[f"{prefix}-web-svc"])[
        "services"
    ]
    assert services and services[0]["status"] == "ACTIVE", "no active service in the cluster"
    svc = services[0]
    assert svc["desiredCount"] == 2 and svc["launchType"] == "FARGATE", (
        "the service must run 2 Fargate tasks"
    )
