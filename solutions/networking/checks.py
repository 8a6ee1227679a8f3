"""State checks for the networking lab, run by the grader outside the student's kernel.

No packets flow in the emulator, so every check grades stored configuration: CIDR blocks, routes,
associations, rules, records. Resources are found by the names the lab asks for (Name tags, group
names, zone names). If a learner ran a cell twice and made duplicates, the best candidate counts.
"""

from __future__ import annotations

import ipaddress

from grader.statecheck import state_check

VPC_CIDR = "10.20.0.0/16"
SUBNETS = {
    "public-a": ("10.20.1.0/24", "a"),
    "public-b": ("10.20.2.0/24", "b"),
    "private-a": ("10.20.11.0/24", "a"),
    "private-b": ("10.20.12.0/24", "b"),
}


def _named(ec2, describe, key, name, **filters):
    extra = [{"Name": k.replace("_", "-"), "Values": [v]} for k, v in filters.items()]
    return getattr(ec2, describe)(Filters=[{"Name": "tag:Name", "Values": [name]}, *extra])[key]


def _vpcs(ec2, prefix):
    vpcs = _named(ec2, "describe_vpcs", "Vpcs", f"{prefix}-vpc")
    assert vpcs, f"no VPC tagged Name={prefix}-vpc"
    return vpcs


def _best(scores):
    scores = list(scores)
    return max(scores) if scores else 0.0


def _subnets(ec2, prefix, vpc_id):
    found = {}
    for key in SUBNETS:
        match = _named(ec2, "describe_subnets", "Subnets", f"{prefix}-{key}", vpc_id=vpc_id)
        if match:
            found[key] = match[0]
    return found


def _route_table(ec2, name, vpc_id):
    tables = _named(ec2, "describe_route_tables", "RouteTables", name, vpc_id=vpc_id)
    return tables


def _associated(table):
    return {a.get("SubnetId") for a in table.get("Associations", []) if a.get("SubnetId")}


@state_check("ex1_state")
def vpc_created(aws, prefix):
    """A VPC tagged {prefix}-vpc with CIDR 10.20.0.0/16 and both DNS attributes on."""
    ec2 = aws.client("ec2")

    def score(vpc):
        if vpc["CidrBlock"] != VPC_CIDR:
            return 0.0
        points = 0.5
        for attribute, key in [("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")]:
            if ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attribute)[key]["Value"]:
                points += 0.25
        return points

    best = _best(score(v) for v in _vpcs(ec2, prefix))
    assert best > 0, f"the VPC {prefix}-vpc does not have the CIDR block {VPC_CIDR}"
    return best


@state_check("ex2_state")
def subnets_created(aws, prefix):
    """Four named subnets with the planned CIDRs in two AZs; public ones map public IPs on launch."""
    ec2 = aws.client("ec2")
    region = ec2.meta.region_name

    def score(vpc):
        found = _subnets(ec2, prefix, vpc["VpcId"])
        good = 0
        for key, (cidr, az) in SUBNETS.items():
            s = found.get(key)
            if not s or s["CidrBlock"] != cidr or s["AvailabilityZone"] != f"{region}{az}":
                continue
            if key.startswith("public") and not s["MapPublicIpOnLaunch"]:
                continue
            good += 1
        return good / len(SUBNETS)

    best = _best(score(v) for v in _vpcs(ec2, prefix))
    assert best > 0, "none of the four subnets has the expected name, CIDR block and AZ"
    return best


@state_check("ex3_state")
def public_routing(aws, prefix):
    """An attached internet gateway, and {prefix}-public-rt routing 0.0.0.0/0 to it for both public subnets."""
    ec2 = aws.client("ec2")

    def score(vpc):
        vpc_id = vpc["VpcId"]
        igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]
        if not igws:
            return 0.0
        igw_ids = {g["InternetGatewayId"] for g in igws}
        subnets = _subnets(ec2, prefix, vpc_id)
        public_ids = {subnets[k]["SubnetId"] for k in ("public-a", "public-b") if k in subnets}
        best = 0.25
        for table in _route_table(ec2, f"{prefix}-public-rt", vpc_id):
            points = 0.25
            if any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId") in igw_ids for r in table["Routes"]):
                points += 0.5
            if public_ids and public_ids <= _associated(table):
                points += 0.25
            best = max(best, points)
        return best

    best = _best(score(v) for v in _vpcs(ec2, prefix))
    assert best > 0, "no internet gateway is attached to the lab VPC"
    return best


@state_check("ex4_state")
def private_routing(aws, prefix):
    """A NAT gateway with an Elastic IP in a public subnet; {prefix}-private-rt sends 0.0.0.0/0 to it for both private subnets."""
    ec2 = aws.client("ec2")

    def score(vpc):
        vpc_id = vpc["VpcId"]
        subnets = _subnets(ec2, prefix, vpc_id)
        public_ids = {subnets[k]["SubnetId"] for k in ("public-a", "public-b") if k in subnets}
        private_ids = {subnets[k]["SubnetId"] for k in ("private-a", "private-b") if k in subnets}
        nats = [n for n in ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
                if n["State"] in ("pending", "available") and n["SubnetId"] in public_ids
                and any(a.get("AllocationId") for a in n.get("NatGatewayAddresses", []))]
        if not nats:
            return 0.0
        nat_ids = {n["NatGatewayId"] for n in nats}
        best = 0.25
        for table in _route_table(ec2, f"{prefix}-private-rt", vpc_id):
            routes = table["Routes"]
            points = 0.0
            if any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("NatGatewayId") in nat_ids for r in routes):
                points += 0.5
            if private_ids and private_ids <= _associated(table):
                points += 0.25
            if any(str(r.get("GatewayId", "")).startswith("igw-") for r in routes):
                points = 0.0  # a route to the internet gateway makes the "private" subnets public
            best = max(best, 0.25 + points)
        return best

    best = _best(score(v) for v in _vpcs(ec2, prefix))
    assert best > 0, "no NAT gateway with an Elastic IP in a public subnet of the lab VPC"
    return best


def _group(ec2, name, vpc_id):
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]},
                                                   {"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    return groups[0] if groups else None


@state_check("ex5_state")
def layered_security_groups(aws, prefix):
    """{prefix}-web allows 80 and 443 from anywhere; {prefix}-app allows 8080 only from the web group."""
    ec2 = aws.client("ec2")

    def score(vpc):
        web = _group(ec2, f"{prefix}-web", vpc["VpcId"])
        app = _group(ec2, f"{prefix}-app", vpc["VpcId"])
        points = 0.0
        if web:
            open_ports = {p.get("FromPort") for p in web["IpPermissions"]
                          if p.get("IpProtocol") == "tcp" and p.get("FromPort") == p.get("ToPort")
                          and any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))}
            points += 0.25 * len(open_ports & {80, 443})
        if app and web:
            rules = app["IpPermissions"]
            from_web = any(p.get("IpProtocol") == "tcp" and p.get("FromPort") == 8080 and p.get("ToPort") == 8080
                           and any(g.get("GroupId") == web["GroupId"] for g in p.get("UserIdGroupPairs", []))
                           for p in rules)
            cidr_open = any(p.get("IpRanges") or p.get("Ipv6Ranges") for p in rules)
            if from_web and not cidr_open:
                points += 0.5
        return points

    best = _best(score(v) for v in _vpcs(ec2, prefix))
    assert best > 0, f"security groups {prefix}-web / {prefix}-app are missing or have none of the expected rules"
    return best


def _nacl_score(acl, public_ids):
    entries = acl["Entries"]
    inbound = {e["RuleNumber"]: e for e in entries if not e["Egress"]}
    outbound = [e for e in entries if e["Egress"]]

    def allows(port):
        return [n for n, e in inbound.items() if e["RuleAction"] == "allow" and e["Protocol"] in ("6", "-1")
                and e["CidrBlock"] == "0.0.0.0/0"
                and (not e.get("PortRange") or e["PortRange"]["From"] <= port <= e["PortRange"]["To"])]

    denies = [n for n, e in inbound.items() if e["RuleAction"] == "deny" and e["CidrBlock"] == "203.0.113.0/24"
              and n < 32767]
    points = 0.0
    web_allows = allows(80) and allows(443)
    if web_allows:
        points += 0.25
    if denies and web_allows and min(denies) < min(min(allows(80)), min(allows(443))):
        points += 0.25
    outbound_ok = any(e["RuleAction"] == "allow" and e["CidrBlock"] == "0.0.0.0/0" and e["RuleNumber"] < 32767
                      for e in outbound)
    if outbound_ok and allows(50000):  # stateless: replies need the ephemeral ports and an outbound allow
        points += 0.25
    if public_ids and public_ids <= {a.get("SubnetId") for a in acl.get("Associations", [])}:
        points += 0.25
    return points


@state_check("ex6_state")
def public_network_acl(aws, prefix):
    """{prefix}-public-nacl: deny 203.0.113.0/24 before allowing 80/443/ephemeral; outbound allowed; on both public subnets."""
    ec2 = aws.client("ec2")

    def score(vpc):
        subnets = _subnets(ec2, prefix, vpc["VpcId"])
        public_ids = {subnets[k]["SubnetId"] for k in ("public-a", "public-b") if k in subnets}
        acls = _named(ec2, "describe_network_acls", "NetworkAcls", f"{prefix}-public-nacl", vpc_id=vpc["VpcId"])
        return _best(_nacl_score(a, public_ids) for a in acls)

    best = _best(score(v) for v in _vpcs(ec2, prefix))
    assert best > 0, f"no network ACL tagged {prefix}-public-nacl with the expected rules"
    return round(best, 2)


@state_check("ex7_state")
def peering(aws, prefix):
    """An active peering between {prefix}-vpc and {prefix}-shared-vpc (no overlap), with routes on both sides."""
    ec2 = aws.client("ec2")
    shared = _named(ec2, "describe_vpcs", "Vpcs", f"{prefix}-shared-vpc")
    assert shared, f"no VPC tagged Name={prefix}-shared-vpc"

    def score(vpc, peer):
        if ipaddress.ip_network(vpc["CidrBlock"]).overlaps(ipaddress.ip_network(peer["CidrBlock"])):
            return 0.0
        pcxs = [p for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
                if {p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]} == {vpc["VpcId"], peer["VpcId"]}
                and p["Status"]["Code"] == "active"]
        if not pcxs:
            return 0.0
        pcx_ids = {p["VpcPeeringConnectionId"] for p in pcxs}

        def routed(vpc_id, cidr, tables):
            return any(r.get("VpcPeeringConnectionId") in pcx_ids and r.get("DestinationCidrBlock") == cidr
                       for t in tables for r in t["Routes"])

        private_tables = _route_table(ec2, f"{prefix}-private-rt", vpc["VpcId"])
        peer_main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [peer["VpcId"]]},
                                                       {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        points = 0.4
        if routed(vpc["VpcId"], peer["CidrBlock"], private_tables):
            points += 0.3
        if routed(peer["VpcId"], vpc["CidrBlock"], peer_main):
            points += 0.3
        return points

    best = _best(score(v, p) for v in _vpcs(ec2, prefix) for p in shared)
    assert best > 0, "no active peering connection between the two VPCs (or their CIDR blocks overlap)"
    return best


@state_check("ex8_state")
def s3_gateway_endpoint(aws, prefix):
    """A gateway endpoint for S3 in the lab VPC, attached to {prefix}-private-rt."""
    ec2 = aws.client("ec2")
    service = f"com.amazonaws.{ec2.meta.region_name}.s3"

    def score(vpc):
        tables = {t["RouteTableId"] for t in _route_table(ec2, f"{prefix}-private-rt", vpc["VpcId"])}
        best = 0.0
        for ep in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["VpcEndpoints"]:
            if ep["ServiceName"] != service or ep.get("VpcEndpointType", "Gateway") != "Gateway":
                continue
            points = 0.5
            if tables & set(ep.get("RouteTableIds", [])):
                points += 0.5
            best = max(best, points)
        return best

    best = _best(score(v) for v in _vpcs(ec2, prefix))
    assert best > 0, "no S3 gateway endpoint in the lab VPC"
    return best


def _zone(route53, name, private):
    wanted = name.rstrip(".") + "."
    zones = [z for z in route53.list_hosted_zones()["HostedZones"]
             if z["Name"] == wanted and z["Config"].get("PrivateZone", False) == private]
    return zones


def _records(route53, zone_id):
    return route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]


def _values(rrset):
    return [v["Value"].strip('"') for v in rrset.get("ResourceRecords", [])]


@state_check("ex9_state")
def dns_zones_and_records(aws, prefix):
    """Public zone {prefix}-shop.example.com with www A, blog CNAME, apex alias and TXT; private zone {prefix}.internal with db A."""
    route53 = aws.client("route53")
    domain = f"{prefix}-shop.example.com"
    publics = _zone(route53, domain, private=False)
    privates = _zone(route53, f"{prefix}.internal", private=True)
    assert publics or privates, f"neither {domain} nor {prefix}.internal exists as a hosted zone of the right kind"

    def public_score(zone):
        rr = {(r["Name"], r["Type"]): r for r in _records(route53, zone["Id"].split("/")[-1]) if "SetIdentifier" not in r}
        apex, www = f"{domain}.", f"www.{domain}."
        points = 0.0
        if "203.0.113.10" in _values(rr.get((www, "A"), {})):
            points += 0.15
        blog = rr.get((f"blog.{domain}.", "CNAME"), {})
        if [v.rstrip(".") for v in _values(blog)] == [f"www.{domain}"]:
            points += 0.15
        alias = rr.get((apex, "A"), {}).get("AliasTarget", {})
        if alias.get("DNSName", "").rstrip(".") == f"www.{domain}":
            points += 0.15
        if f"cloudlabs-verification={prefix}" in _values(rr.get((apex, "TXT"), {})):
            points += 0.15
        return points

    def private_score(zone):
        zone_id = zone["Id"].split("/")[-1]
        points = 0.0
        vpcs = route53.get_hosted_zone(Id=zone_id).get("VPCs", [])
        ec2 = aws.client("ec2")
        lab_vpcs = {v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{prefix}-vpc"]}])["Vpcs"]}
        if lab_vpcs & {v["VPCId"] for v in vpcs}:
            points += 0.2
        if any(r["Name"] == f"db.{prefix}.internal." and r["Type"] == "A" and "10.20.11.25" in _values(r)
               for r in _records(route53, zone_id)):
            points += 0.2
        return points

    return round(_best(public_score(z) for z in publics) + _best(private_score(z) for z in privates), 2)


@state_check("ex10_state")
def weighted_and_failover(aws, prefix):
    """A tagged HTTPS health check; weighted api records 90/10; failover app records, primary with the health check."""
    route53 = aws.client("route53")
    domain = f"{prefix}-shop.example.com"
    checks = []
    for hc in route53.list_health_checks()["HealthChecks"]:
        tags = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=hc["Id"])["ResourceTagSet"]["Tags"]
        if {"Key": "Name", "Value": f"{prefix}-primary-hc"} in tags:
            checks.append(hc)
    assert checks, f"no Route 53 health check tagged Name={prefix}-primary-hc"
    hc_ids = {hc["Id"] for hc in checks}
    points = 0.2
    if any(hc["HealthCheckConfig"].get("Type") == "HTTPS" and hc["HealthCheckConfig"].get("ResourcePath") == "/health"
           for hc in checks):
        points += 0.1

    def zone_score(zone):
        rrs = _records(route53, zone["Id"].split("/")[-1])
        api = {r["SetIdentifier"]: r for r in rrs if r["Name"] == f"api.{domain}." and "Weight" in r}
        app = {r.get("Failover"): r for r in rrs if r["Name"] == f"app.{domain}." and "Failover" in r}
        score = 0.0
        if api.get("blue", {}).get("Weight") == 90 and api.get("green", {}).get("Weight") == 10:
            score += 0.35
        primary, secondary = app.get("PRIMARY"), app.get("SECONDARY")
        if primary and secondary:
            score += 0.15
            if primary.get("HealthCheckId") in hc_ids:
                score += 0.2
        return score

    return round(points + _best(zone_score(z) for z in _zone(route53, domain, private=False)), 2)
