"""State checks for the networking lab, run by the grader outside the student's kernel.

No packets flow in the emulator, so every check grades stored configuration: CIDR blocks, routes,
associations, rules, records. Resources are found by the names the lab asks for (Name tags, group
names, zone names). If a learner ran a cell twice and made duplicates, the best candidate counts
(grader.statecheck.best).
"""

from __future__ import annotations

import ipaddress
import itertools

from grader.statecheck import Parts, best, state_check

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


def _subnets(ec2, prefix, vpc_id):
    found = {}
    for key in SUBNETS:
        match = _named(ec2, "describe_subnets", "Subnets", f"{prefix}-{key}", vpc_id=vpc_id)
        if match:
            found[key] = match[0]
    return found


def _route_table(ec2, name, vpc_id):
    return _named(ec2, "describe_route_tables", "RouteTables", name, vpc_id=vpc_id)


def _ids(subnets, *keys):
    return {subnets[k]["SubnetId"] for k in keys if k in subnets}


def _associated(table):
    return {a.get("SubnetId") for a in table.get("Associations", []) if a.get("SubnetId")}


@state_check("ex1_state")
def vpc_created(aws, prefix):
    """A VPC tagged {prefix}-vpc with CIDR 10.20.0.0/16 (half) and both DNS attributes on (1/4 each)."""
    ec2 = aws.client("ec2")

    def parts_of(vpc):
        def attribute(name, key):
            return ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=name)[key]["Value"]

        check = Parts()
        cidr = check.part(
            f"the CIDR block {VPC_CIDR}",
            vpc["CidrBlock"] == VPC_CIDR,
            weight=2,
            why=f"the VPC {prefix}-vpc has the CIDR block {vpc['CidrBlock']}",
        )
        check.part(
            "DNS support",
            lambda: attribute("enableDnsSupport", "EnableDnsSupport"),
            requires=cidr,
            why="enableDnsSupport is off",
        )
        check.part(
            "DNS hostnames",
            lambda: attribute("enableDnsHostnames", "EnableDnsHostnames"),
            requires=cidr,
            why="enableDnsHostnames is off",
        )
        return check

    return best(_vpcs(ec2, prefix), parts_of)


@state_check("ex2_state")
def subnets_created(aws, prefix):
    """Four named subnets with the planned CIDRs in two AZs; public ones map public IPs on launch (1/4 each)."""
    ec2 = aws.client("ec2")
    region = ec2.meta.region_name

    def planned(subnet, key, cidr, az):
        return (
            bool(subnet)
            and subnet["CidrBlock"] == cidr
            and subnet["AvailabilityZone"] == f"{region}{az}"
            and (not key.startswith("public") or subnet["MapPublicIpOnLaunch"])
        )

    def parts_of(vpc):
        found = _subnets(ec2, prefix, vpc["VpcId"])
        check = Parts()
        for key, (cidr, az) in SUBNETS.items():
            public = ", mapping public IPs on launch" if key.startswith("public") else ""
            check.part(
                f"the subnet {prefix}-{key}",
                planned(found.get(key), key, cidr, az),
                why=f"no subnet {prefix}-{key} with {cidr} in {region}{az}{public}",
            )
        return check

    return best(_vpcs(ec2, prefix), parts_of)


def _tier_routing(
    gateway, short, gateway_ids, key, table, subnet_ids, *, table_name, tier, no_gateway
):  # fmt: skip
    """The parts of one subnet tier's routing: its gateway (1/4), the route table's default route
    through it, ``route[key]`` in ``gateway_ids`` (1/2), and the table's association with the
    tier's subnets (1/4). ``table`` returns the route table or raises why it is unusable."""
    check = Parts()
    found = check.part(f"the {gateway}", gateway_ids, why=no_gateway)
    check.part(
        f"the default route to the {gateway}",
        weight=2,
        requires=found,
        test=lambda: any(
            r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get(key) in gateway_ids
            for r in table()["Routes"]
        ),
        why=f"{table_name} has no route 0.0.0.0/0 to the {short}",
    )
    check.part(
        f"the {tier} subnets' association",
        requires=found,
        test=lambda: subnet_ids and subnet_ids <= _associated(table()),
        why=f"{table_name} is not associated with both {tier} subnets",
    )
    return check


@state_check("ex3_state")
def public_routing(aws, prefix):
    """An attached internet gateway (1/4), and {prefix}-public-rt routing 0.0.0.0/0 to it (1/2) for both public subnets (1/4)."""
    ec2 = aws.client("ec2")
    candidates = []  # (the VPC's gateway ids, its public subnet ids, one public-rt table or None)
    for vpc in _vpcs(ec2, prefix):
        igws = ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}]
        )["InternetGateways"]
        igw_ids = {g["InternetGatewayId"] for g in igws}
        public_ids = _ids(_subnets(ec2, prefix, vpc["VpcId"]), "public-a", "public-b")
        tables = _route_table(ec2, f"{prefix}-public-rt", vpc["VpcId"])
        candidates += [(igw_ids, public_ids, table) for table in tables or [None]]

    def parts_of(candidate):
        igw_ids, public_ids, table = candidate

        def public_table():
            assert table, f"no route table tagged Name={prefix}-public-rt in the lab VPC"
            return table

        return _tier_routing(
            "internet gateway", "gateway", igw_ids, "GatewayId", public_table, public_ids,
            table_name=f"{prefix}-public-rt", tier="public",
            no_gateway="no internet gateway is attached to the lab VPC",
        )  # fmt: skip

    return best(candidates, parts_of)


@state_check("ex4_state")
def private_routing(aws, prefix):
    """A NAT gateway with an Elastic IP in a public subnet (1/4); {prefix}-private-rt sends 0.0.0.0/0 to it (1/2) for both private subnets (1/4)."""
    ec2 = aws.client("ec2")
    candidates = []  # (the NAT gateway ids, the private subnet ids, one private-rt table or None)
    for vpc in _vpcs(ec2, prefix):
        vpc_id = vpc["VpcId"]
        subnets = _subnets(ec2, prefix, vpc_id)
        public_ids = _ids(subnets, "public-a", "public-b")
        nats = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        nat_ids = {
            n["NatGatewayId"]
            for n in nats["NatGateways"]
            if n["State"] in ("pending", "available")
            and n["SubnetId"] in public_ids
            and any(a.get("AllocationId") for a in n.get("NatGatewayAddresses", []))
        }
        tables = _route_table(ec2, f"{prefix}-private-rt", vpc_id)
        candidates += [
            (nat_ids, _ids(subnets, "private-a", "private-b"), t) for t in tables or [None]
        ]

    def parts_of(candidate):
        nat_ids, private_ids, table = candidate

        def private_table():
            assert table, f"no route table tagged Name={prefix}-private-rt in the lab VPC"
            # a route to the internet gateway makes the "private" subnets public
            assert not any(
                str(r.get("GatewayId", "")).startswith("igw-") for r in table["Routes"]
            ), f"{prefix}-private-rt routes to an internet gateway, which makes its subnets public"
            return table

        return _tier_routing(
            "NAT gateway", "NAT gateway", nat_ids, "NatGatewayId", private_table, private_ids,
            table_name=f"{prefix}-private-rt", tier="private",
            no_gateway="no NAT gateway with an Elastic IP in a public subnet of the lab VPC",
        )  # fmt: skip

    return best(candidates, parts_of)


def _group(ec2, name, vpc_id):
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["SecurityGroups"]
    return groups[0] if groups else None


@state_check("ex5_state")
def layered_security_groups(aws, prefix):
    """{prefix}-web allows 80 and 443 from anywhere (1/4 each); {prefix}-app allows 8080 only from the web group (1/2)."""
    ec2 = aws.client("ec2")

    def parts_of(vpc):
        web = _group(ec2, f"{prefix}-web", vpc["VpcId"])
        app = _group(ec2, f"{prefix}-app", vpc["VpcId"])
        open_ports = {
            p.get("FromPort")
            for p in (web or {}).get("IpPermissions", [])
            if p.get("IpProtocol") == "tcp"
            and p.get("FromPort") == p.get("ToPort")
            and any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
        }

        def app_from_web_only():
            assert web and app, f"the security groups {prefix}-web and {prefix}-app must both exist"
            rules = app["IpPermissions"]
            from_web = any(
                p.get("IpProtocol") == "tcp"
                and p.get("FromPort") == 8080
                and p.get("ToPort") == 8080
                and any(g.get("GroupId") == web["GroupId"] for g in p.get("UserIdGroupPairs", []))
                for p in rules
            )
            cidr_open = any(p.get("IpRanges") or p.get("Ipv6Ranges") for p in rules)
            return from_web and not cidr_open

        check = Parts()
        for port in (80, 443):
            check.part(
                f"port {port} open on {prefix}-web",
                port in open_ports,
                why=f"{prefix}-web does not allow TCP {port} from 0.0.0.0/0",
            )
        check.part(
            f"port 8080 on {prefix}-app from the web group only",
            app_from_web_only,
            weight=2,
            why=f"{prefix}-app must allow TCP 8080 from {prefix}-web and from no CIDR range",
        )
        return check

    return best(_vpcs(ec2, prefix), parts_of)


def _nacl_parts(acl, public_ids, prefix):
    """The four quarters of ex6 for one network ACL (None: there is none)."""
    entries = acl["Entries"] if acl else []
    inbound = {e["RuleNumber"]: e for e in entries if not e["Egress"]}
    outbound = [e for e in entries if e["Egress"]]

    def allows(port):
        return [
            n
            for n, e in inbound.items()
            if e["RuleAction"] == "allow"
            and e["Protocol"] in ("6", "-1")
            and e["CidrBlock"] == "0.0.0.0/0"
            and (not e.get("PortRange") or e["PortRange"]["From"] <= port <= e["PortRange"]["To"])
        ]

    denies = [
        n
        for n, e in inbound.items()
        if e["RuleAction"] == "deny" and e["CidrBlock"] == "203.0.113.0/24" and n < 32767
    ]
    outbound_ok = any(
        e["RuleAction"] == "allow" and e["CidrBlock"] == "0.0.0.0/0" and e["RuleNumber"] < 32767
        for e in outbound
    )
    none = f"no network ACL tagged Name={prefix}-public-nacl in the lab VPC" if acl is None else ""
    check = Parts()
    web = check.part(
        "inbound 80 and 443 allowed",
        bool(allows(80) and allows(443)),
        why=none or "no inbound rule allows TCP 80 and 443 from 0.0.0.0/0",
    )
    check.part(
        "the deny before the allows",
        requires=web,
        test=lambda: denies and min(denies) < min(min(allows(80)), min(allows(443))),
        why="no inbound deny of 203.0.113.0/24 numbered before the allow rules",
    )
    # stateless: replies need the ephemeral ports and an outbound allow
    check.part(
        "the ephemeral ports and outbound traffic",
        outbound_ok and bool(allows(50000)),
        why=none or "inbound ephemeral ports or an outbound allow to 0.0.0.0/0 are missing",
    )
    check.part(
        "the public subnets' association",
        bool(public_ids)
        and public_ids <= {a.get("SubnetId") for a in (acl or {}).get("Associations", [])},
        why=none or f"{prefix}-public-nacl is not associated with both public subnets",
    )
    return check


@state_check("ex6_state")
def public_network_acl(aws, prefix):
    """{prefix}-public-nacl: deny 203.0.113.0/24 before allowing 80/443/ephemeral; outbound allowed; on both public subnets (1/4 each)."""
    ec2 = aws.client("ec2")
    candidates = []  # (one public-nacl or None, the VPC's public subnet ids)
    for vpc in _vpcs(ec2, prefix):
        public_ids = _ids(_subnets(ec2, prefix, vpc["VpcId"]), "public-a", "public-b")
        acls = _named(
            ec2,
            "describe_network_acls",
            "NetworkAcls",
            f"{prefix}-public-nacl",
            vpc_id=vpc["VpcId"],
        )
        candidates += [(acl, public_ids) for acl in acls or [None]]
    return best(candidates, lambda candidate: _nacl_parts(*candidate, prefix))


@state_check("ex7_state")
def peering(aws, prefix):
    """An active peering between {prefix}-vpc and {prefix}-shared-vpc (no overlap) (4/10), with routes on both sides (3/10 each)."""
    ec2 = aws.client("ec2")
    shared = _named(ec2, "describe_vpcs", "Vpcs", f"{prefix}-shared-vpc")
    assert shared, f"no VPC tagged Name={prefix}-shared-vpc"

    def parts_of(pair):
        vpc, peer = pair
        pcx_ids = {
            p["VpcPeeringConnectionId"]
            for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
            if {p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]}
            == {vpc["VpcId"], peer["VpcId"]}
            and p["Status"]["Code"] == "active"
        }

        def peered():
            assert not ipaddress.ip_network(vpc["CidrBlock"]).overlaps(
                ipaddress.ip_network(peer["CidrBlock"])
            ), "the two VPCs' CIDR blocks overlap"
            return pcx_ids

        def routed(cidr, tables):
            return any(
                r.get("VpcPeeringConnectionId") in pcx_ids and r.get("DestinationCidrBlock") == cidr
                for t in tables
                for r in t["Routes"]
            )

        def peer_main():
            return ec2.describe_route_tables(
                Filters=[
                    {"Name": "vpc-id", "Values": [peer["VpcId"]]},
                    {"Name": "association.main", "Values": ["true"]},
                ]
            )["RouteTables"]

        check = Parts()
        link = check.part(
            "the active peering connection",
            peered,
            weight=4,
            why=f"no active peering connection between {prefix}-vpc and {prefix}-shared-vpc",
        )
        check.part(
            f"the route from {prefix}-private-rt to the shared VPC",
            weight=3,
            requires=link,
            test=lambda: routed(
                peer["CidrBlock"], _route_table(ec2, f"{prefix}-private-rt", vpc["VpcId"])
            ),
            why=f"{prefix}-private-rt has no route to {peer['CidrBlock']} through the peering",
        )
        check.part(
            "the route back from the shared VPC's main route table",
            weight=3,
            requires=link,
            test=lambda: routed(vpc["CidrBlock"], peer_main()),
            why=f"the shared VPC's main route table has no route to {vpc['CidrBlock']} through the peering",
        )
        return check

    return best(itertools.product(_vpcs(ec2, prefix), shared), parts_of)


@state_check("ex8_state")
def s3_gateway_endpoint(aws, prefix):
    """A gateway endpoint for S3 in the lab VPC (half), attached to {prefix}-private-rt (half)."""
    ec2 = aws.client("ec2")
    service = f"com.amazonaws.{ec2.meta.region_name}.s3"
    candidates = []  # (the VPC's private-rt ids, one S3 gateway endpoint or None)
    for vpc in _vpcs(ec2, prefix):
        tables = {
            t["RouteTableId"] for t in _route_table(ec2, f"{prefix}-private-rt", vpc["VpcId"])
        }
        endpoints = [
            ep
            for ep in ec2.describe_vpc_endpoints(
                Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
            )["VpcEndpoints"]
            if ep["ServiceName"] == service and ep.get("VpcEndpointType", "Gateway") == "Gateway"
        ]
        candidates += [(tables, ep) for ep in endpoints or [None]]

    def parts_of(candidate):
        tables, endpoint = candidate
        check = Parts()
        found = check.part(
            "the S3 gateway endpoint", endpoint, why="no S3 gateway endpoint in the lab VPC"
        )
        check.part(
            f"the endpoint on {prefix}-private-rt",
            requires=found,
            test=lambda: tables & set(endpoint.get("RouteTableIds", [])),
            why=f"the endpoint is not attached to {prefix}-private-rt",
        )
        return check

    return best(candidates, parts_of)


def _zone(route53, name, private):
    wanted = name.rstrip(".") + "."
    return [
        z
        for z in route53.list_hosted_zones()["HostedZones"]
        if z["Name"] == wanted and z["Config"].get("PrivateZone", False) == private
    ]


def _zone_id(zone):
    return zone["Id"].split("/")[-1]


def _records(route53, zone):
    return route53.list_resource_record_sets(HostedZoneId=_zone_id(zone))["ResourceRecordSets"]


def _values(rrset):
    return [v["Value"].strip('"') for v in rrset.get("ResourceRecords", [])]


@state_check("ex9_state")
def dns_zones_and_records(aws, prefix):
    """Public zone {prefix}-shop.example.com with www A, blog CNAME, apex alias and TXT (3/20 each); private zone {prefix}.internal on the lab VPC (1/5) with db A (1/5)."""
    route53 = aws.client("route53")
    ec2 = aws.client("ec2")
    domain = f"{prefix}-shop.example.com"
    publics = _zone(route53, domain, private=False)
    privates = _zone(route53, f"{prefix}.internal", private=True)
    assert publics or privates, (
        f"neither {domain} nor {prefix}.internal exists as a hosted zone of the right kind"
    )
    lab_vpcs = {v["VpcId"] for v in _named(ec2, "describe_vpcs", "Vpcs", f"{prefix}-vpc")}
    # each zone read once: a public zone's record sets by (name, type); a private zone's VPCs and
    # record sets
    public_zones = [
        {(r["Name"], r["Type"]): r for r in _records(route53, z) if "SetIdentifier" not in r}
        for z in publics
    ]
    private_zones = [
        (
            {v["VPCId"] for v in route53.get_hosted_zone(Id=_zone_id(z)).get("VPCs", [])},
            _records(route53, z),
        )
        for z in privates
    ]

    def parts_of(pair):
        public, private = pair
        no_public = "" if public is not None else f"no public hosted zone {domain}"
        no_private = "" if private is not None else f"no private hosted zone {prefix}.internal"
        rr = public or {}
        vpcs, records = private or (set(), [])
        apex, www = f"{domain}.", f"www.{domain}."
        blog = [v.rstrip(".") for v in _values(rr.get((f"blog.{domain}.", "CNAME"), {}))]
        alias = rr.get((apex, "A"), {}).get("AliasTarget", {})
        check = Parts()
        check.part(
            "the www A record",
            "203.0.113.10" in _values(rr.get((www, "A"), {})),
            weight=3,
            why=no_public or f"no A record {www} with 203.0.113.10",
        )
        check.part(
            "the blog CNAME",
            blog == [f"www.{domain}"],
            weight=3,
            why=no_public or f"no CNAME blog.{domain} to www.{domain}",
        )
        check.part(
            "the apex alias",
            alias.get("DNSName", "").rstrip(".") == f"www.{domain}",
            weight=3,
            why=no_public or f"no alias A record {apex} to www.{domain}",
        )
        check.part(
            "the TXT record",
            f"cloudlabs-verification={prefix}" in _values(rr.get((apex, "TXT"), {})),
            weight=3,
            why=no_public or f"no TXT record cloudlabs-verification={prefix} on {apex}",
        )
        check.part(
            "the private zone on the lab VPC",
            bool(lab_vpcs & vpcs),
            weight=4,
            why=no_private or f"{prefix}.internal is not associated with {prefix}-vpc",
        )
        check.part(
            "the db A record",
            weight=4,
            test=any(
                r["Name"] == f"db.{prefix}.internal."
                and r["Type"] == "A"
                and "10.20.11.25" in _values(r)
                for r in records
            ),
            why=no_private or f"no A record db.{prefix}.internal with 10.20.11.25",
        )
        return check

    # the best public zone and the best private zone: their scores add up
    return best(itertools.product(public_zones or [None], private_zones or [None]), parts_of)


@state_check("ex10_state")
def weighted_and_failover(aws, prefix):
    """A tagged (1/5) HTTPS health check (1/10); weighted api records 90/10 (7/20); failover app records (3/20), primary with the health check (1/5)."""
    route53 = aws.client("route53")
    domain = f"{prefix}-shop.example.com"
    checks = []
    for hc in route53.list_health_checks()["HealthChecks"]:
        tags = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=hc["Id"])[
            "ResourceTagSet"
        ]["Tags"]
        if {"Key": "Name", "Value": f"{prefix}-primary-hc"} in tags:
            checks.append(hc)
    assert checks, f"no Route 53 health check tagged Name={prefix}-primary-hc"
    hc_ids = {hc["Id"] for hc in checks}
    https = any(
        hc["HealthCheckConfig"].get("Type") == "HTTPS"
        and hc["HealthCheckConfig"].get("ResourcePath") == "/health"
        for hc in checks
    )

    def parts_of(zone):
        rrs = _records(route53, zone) if zone else []
        api = {
            r["SetIdentifier"]: r for r in rrs if r["Name"] == f"api.{domain}." and "Weight" in r
        }
        app = {
            r.get("Failover"): r for r in rrs if r["Name"] == f"app.{domain}." and "Failover" in r
        }
        no_zone = "" if zone else f"no public hosted zone {domain}"
        check = Parts()
        check.part(f"the health check {prefix}-primary-hc", True, weight=20)
        check.part(
            "HTTPS on /health", https, weight=10, why="the health check is not HTTPS on /health"
        )
        check.part(
            "the weighted api records",
            weight=35,
            test=api.get("blue", {}).get("Weight") == 90
            and api.get("green", {}).get("Weight") == 10,
            why=no_zone or f"no weighted records api.{domain} blue 90 and green 10",
        )
        failover = check.part(
            "the failover app records",
            bool(app.get("PRIMARY") and app.get("SECONDARY")),
            weight=15,
            why=no_zone or f"no PRIMARY and SECONDARY failover records app.{domain}",
        )
        check.part(
            "the health check on the primary",
            requires=failover,
            weight=20,
            test=lambda: app["PRIMARY"].get("HealthCheckId") in hc_ids,
            why=f"the PRIMARY record app.{domain} does not use {prefix}-primary-hc",
        )
        return check

    return best(_zone(route53, domain, private=False) or [None], parts_of)
