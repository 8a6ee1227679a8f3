"""State checks for the databases lab, run by the grader outside the student's kernel.

RDS, Aurora and ElastiCache are metadata only in the emulator (no engine runs), so those checks
grade the configuration it stores: Multi-AZ flags, encryption keys, replicas, snapshots, groups,
promotion tiers and the writer after a requested failover. DynamoDB runs for real, so its checks
read the items the learner wrote. Resources are found by the names the lab asks for.
"""

from __future__ import annotations

from grader.statecheck import Parts, state_check

VPC_CIDR = "10.40.0.0/16"
SUBNETS = {"data-a": ("10.40.21.0/24", "a"), "data-b": ("10.40.22.0/24", "b")}
AUDIT_ACCOUNT = "444455556666"
PRODUCTS = {  # sku: (category, price in cents)
    "MUG-01": ("kitchen", 1290),
    "PAN-02": ("kitchen", 4500),
    "KNF-03": ("kitchen", 899),
    "TNT-04": ("outdoor", 18900),
    "LMP-05": ("outdoor", 2450),
}
ORDERS = {  # order id: (customer id, placed at)
    "o-1001": ("c-ana", "2026-10-02T09:15:00Z"),
    "o-1002": ("c-ben", "2026-10-05T18:40:00Z"),
    "o-1003": ("c-ana", "2026-11-20T07:05:00Z"),
    "o-0999": ("c-ana", "2026-09-14T12:00:00Z"),
}


def _dr_region(region):
    return "us-west-2" if region != "us-west-2" else "us-east-1"


def _instance(rds, identifier):
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def _cluster(rds, identifier):
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]


def _same_key(kms, stored, alias):
    """The key stored on a resource (an ARN, id or alias) is the key behind ``alias``."""
    if not stored:
        return False
    want = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    return kms.describe_key(KeyId=stored)["KeyMetadata"]["KeyId"] == want


def _tagged(ec2, describe, key, name, **filters):
    extra = [{"Name": k.replace("_", "-"), "Values": [v]} for k, v in filters.items()]
    return getattr(ec2, describe)(Filters=[{"Name": "tag:Name", "Values": [name]}, *extra])[key]


def _data_subnet_ids(ec2, prefix):
    """The ids of the subnets tagged {prefix}-data-a / -b with the planned CIDR blocks."""
    region = ec2.meta.region_name
    found = set()
    for key, (cidr, az) in SUBNETS.items():
        for subnet in _tagged(ec2, "describe_subnets", "Subnets", f"{prefix}-{key}"):
            if subnet["CidrBlock"] == cidr and subnet["AvailabilityZone"] == f"{region}{az}":
                found.add(subnet["SubnetId"])
    return found


@state_check("ex1_state")
def network_and_subnet_group(aws, prefix):
    """The VPC (1/4), its two planned subnets (1/4), the DB subnet group of both in two AZs (1/2)."""
    ec2 = aws.client("ec2")
    check = Parts()
    vpcs = _tagged(ec2, "describe_vpcs", "Vpcs", f"{prefix}-data-vpc")
    check.part(
        f"the VPC {prefix}-data-vpc",
        any(v["CidrBlock"] == VPC_CIDR for v in vpcs),
        why=f"no VPC tagged Name={prefix}-data-vpc with the CIDR block {VPC_CIDR}",
    )
    subnet_ids = _data_subnet_ids(ec2, prefix)
    subnets = check.part(
        "the two data subnets",
        len(subnet_ids) >= 2,
        why=f"the subnets {prefix}-data-a and {prefix}-data-b are not there with their planned "
        "CIDR blocks and Availability Zones",
    )

    def group_ok():
        group = aws.client("rds").describe_db_subnet_groups(
            DBSubnetGroupName=f"{prefix}-db-subnets"
        )["DBSubnetGroups"][0]
        members = {s["SubnetIdentifier"] for s in group["Subnets"]}
        zones = {s["SubnetAvailabilityZone"]["Name"] for s in group["Subnets"]}
        assert len(zones) >= 2, "the DB subnet group's subnets are not in two Availability Zones"
        assert len(members & subnet_ids) >= 2, "the DB subnet group does not hold both data subnets"
        return True

    check.part(f"the DB subnet group {prefix}-db-subnets", group_ok, weight=2, requires=subnets)
    return check


@state_check("ex2_state")
def parameter_group(aws, prefix):
    """The postgres16 group (1/4) with rds.force_ssl=1 (1/2) and log_min_duration_statement=500 (1/4)."""
    rds = aws.client("rds")
    name = f"{prefix}-shop-postgres16"
    group = rds.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"][0]
    values = {
        p["ParameterName"]: p.get("ParameterValue")
        for p in rds.describe_db_parameters(DBParameterGroupName=name)["Parameters"]
    }
    check = Parts()
    family = check.part(
        "the postgres16 family",
        group["DBParameterGroupFamily"] == "postgres16",
        why=f"the group's family is {group['DBParameterGroupFamily']}, not postgres16",
    )
    check.part(
        "rds.force_ssl = 1",
        values.get("rds.force_ssl") == "1",
        weight=2,
        requires=family,
        why="rds.force_ssl is not set to 1",
    )
    check.part(
        "log_min_duration_statement = 500",
        values.get("log_min_duration_statement") == "500",
        requires=family,
        why="log_min_duration_statement is not set to 500",
    )
    return check


@state_check("ex3_state")
def orders_database(aws, prefix):
    """Multi-AZ (2/8), encrypted with the lab key (2/8), storage (1/8), backups (1/8), placement (1/8), access (1/8)."""
    rds = aws.client("rds")
    kms = aws.client("kms")
    db = _instance(rds, f"{prefix}-orders-db")
    check = Parts()
    check.part("Multi-AZ", db.get("MultiAZ"), weight=2, why="the instance is not Multi-AZ")
    check.part(
        f"encryption with the key behind alias/{prefix}-data",
        lambda: (
            db.get("StorageEncrypted")
            and _same_key(kms, db.get("KmsKeyId"), f"alias/{prefix}-data")
        ),
        weight=2,
        why=f"the instance is not encrypted with the key behind alias/{prefix}-data",
    )
    check.part(
        "gp3 storage of 100 GiB autoscaling to 500 GiB",
        db.get("StorageType") == "gp3"
        and db.get("AllocatedStorage") == 100
        and db.get("MaxAllocatedStorage") == 500,
        why=f"storage is {db.get('StorageType')} {db.get('AllocatedStorage')} GiB with a maximum of "
        f"{db.get('MaxAllocatedStorage')}; expected gp3, 100 GiB, up to 500 GiB",
    )
    check.part(
        "7-day automated backups in 03:00-03:30",
        db.get("BackupRetentionPeriod") == 7 and db.get("PreferredBackupWindow") == "03:00-03:30",
        why=f"backups are kept {db.get('BackupRetentionPeriod')} days in the window "
        f"{db.get('PreferredBackupWindow')}",
    )
    groups = [g["DBParameterGroupName"] for g in db.get("DBParameterGroups", [])]
    check.part(
        "the subnet group, the parameter group and no public access",
        db.get("DBSubnetGroup", {}).get("DBSubnetGroupName") == f"{prefix}-db-subnets"
        and groups == [f"{prefix}-shop-postgres16"]
        and not db.get("PubliclyAccessible"),
        why="the instance is not in the lab's subnet and parameter groups, or is publicly accessible",
    )
    check.part(
        "IAM database authentication, deletion protection and tags copied to snapshots",
        db.get("IAMDatabaseAuthenticationEnabled")
        and db.get("DeletionProtection")
        and db.get("CopyTagsToSnapshot")
        and db.get("PreferredMaintenanceWindow") == "sun:04:00-sun:04:30",
        why="IAM database authentication, deletion protection, CopyTagsToSnapshot or the "
        "maintenance window sun:04:00-sun:04:30 is missing",
    )
    return check


@state_check("ex4_state")
def reports_replica(aws, prefix):
    """A read replica of the orders database (1/2), db.t4g.medium (1/4), in the b AZ (1/4)."""
    rds = aws.client("rds")
    region = rds.meta.region_name
    replica = _instance(rds, f"{prefix}-orders-db-reports")
    check = Parts()
    source = check.part(
        f"a read replica of {prefix}-orders-db",
        replica.get("ReadReplicaSourceDBInstanceIdentifier") == f"{prefix}-orders-db",
        weight=2,
        why=f"{prefix}-orders-db-reports is not a read replica of {prefix}-orders-db",
    )
    check.part(
        "the class db.t4g.medium",
        replica.get("DBInstanceClass") == "db.t4g.medium",
        requires=source,
        why=f"the replica's class is {replica.get('DBInstanceClass')}",
    )
    check.part(
        f"the Availability Zone {region}b",
        replica.get("AvailabilityZone") == f"{region}b",
        requires=source,
        why=f"the replica is in {replica.get('AvailabilityZone')}",
    )
    return check


@state_check("ex5_state")
def snapshot_and_restore(aws, prefix):
    """The tagged manual snapshot (1/3), shared with the auditors (1/6), restored as asked (1/2)."""
    rds = aws.client("rds")
    kms = aws.client("kms")
    snap = rds.describe_db_snapshots(DBSnapshotIdentifier=f"{prefix}-orders-db-prelaunch")[
        "DBSnapshots"
    ][0]
    check = Parts()
    taken = check.part(
        "the manual snapshot of the orders database tagged purpose=prelaunch",
        snap.get("SnapshotType") == "manual"
        and snap.get("DBInstanceIdentifier") == f"{prefix}-orders-db"
        and {"Key": "purpose", "Value": "prelaunch"} in snap.get("TagList", []),
        weight=2,
        why="the snapshot is not a manual snapshot of the orders database tagged purpose=prelaunch",
    )

    def shared():
        attrs = rds.describe_db_snapshot_attributes(
            DBSnapshotIdentifier=f"{prefix}-orders-db-prelaunch"
        )["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
        return any(
            a["AttributeName"] == "restore" and AUDIT_ACCOUNT in a.get("AttributeValues", [])
            for a in attrs
        )

    check.part(
        f"the share with {AUDIT_ACCOUNT}",
        shared,
        requires=taken,
        why="the snapshot is not shared with the auditors",
    )

    def restored():
        db = _instance(rds, f"{prefix}-orders-db-restore-test")
        groups = [g["DBParameterGroupName"] for g in db.get("DBParameterGroups", [])]
        assert db.get("DBInstanceClass") == "db.t4g.small", (
            f"the restore test is of class {db.get('DBInstanceClass')}, not db.t4g.small"
        )
        assert db.get("DBSubnetGroup", {}).get("DBSubnetGroupName") == f"{prefix}-db-subnets", (
            "the restore test is not in the lab's DB subnet group"
        )
        assert groups == [f"{prefix}-shop-postgres16"], (
            f"the restore test uses the parameter group {groups}, not {prefix}-shop-postgres16"
        )
        assert db.get("MasterUsername") == snap.get("MasterUsername") and db.get(
            "StorageEncrypted"
        ), "the restore test does not carry the snapshot's master user and encryption"
        assert _same_key(kms, db.get("KmsKeyId"), snap.get("KmsKeyId")), (
            "the restore test is not encrypted with the snapshot's key: restore it from the snapshot"
        )
        return True

    check.part(
        f"the restore test {prefix}-orders-db-restore-test", restored, weight=3, requires=taken
    )
    return check


@state_check("ex6_state")
def catalog_cluster(aws, prefix):
    """Encryption, backups, scaling (1/6 each); the two tiered serverless instances (1/3); the drill (1/6)."""
    rds = aws.client("rds")
    kms = aws.client("kms")
    cluster = _cluster(rds, f"{prefix}-catalog")
    check = Parts()
    check.part(
        "encryption with the lab key",
        lambda: (
            cluster.get("StorageEncrypted")
            and _same_key(kms, cluster.get("KmsKeyId"), f"alias/{prefix}-data")
        ),
        why=f"the cluster is not encrypted with the key behind alias/{prefix}-data",
    )
    check.part(
        "14-day backups",
        cluster.get("BackupRetentionPeriod") == 14,
        why=f"backups are kept {cluster.get('BackupRetentionPeriod')} days, not 14",
    )
    scaling = cluster.get("ServerlessV2ScalingConfiguration") or {}
    check.part(
        "Serverless v2 from 0.5 to 16 ACUs",
        scaling.get("MinCapacity") == 0.5 and scaling.get("MaxCapacity") == 16,
        why=f"the Serverless v2 range is {scaling.get('MinCapacity')}-{scaling.get('MaxCapacity')} ACUs",
    )
    tiers = {m["DBInstanceIdentifier"]: m.get("PromotionTier") for m in cluster["DBClusterMembers"]}

    def instances_ok():
        want = {f"{prefix}-catalog-1": 0, f"{prefix}-catalog-2": 1}
        assert {k: tiers.get(k) for k in want} == want, (
            f"the cluster's instances and promotion tiers are {tiers}; expected {want}"
        )
        classes = {k: _instance(rds, k)["DBInstanceClass"] for k in want}
        assert set(classes.values()) == {"db.serverless"}, (
            f"the instances' classes are {classes}; use db.serverless"
        )
        return True

    members = check.part("the writer and the reader", instances_ok, weight=2)
    writers = [
        m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"]
    ]
    check.part(
        "the failover drill",
        writers == [f"{prefix}-catalog-2"],
        requires=members,
        why=f"the writer is {writers}; fail the cluster over to {prefix}-catalog-2",
    )
    return check


@state_check("ex7_state")
def sessions_cache(aws, prefix):
    """Subnet group (1/6), 2 shards x (primary + replica) (1/3), failover (1/6), encryption (1/6), snapshots (1/6)."""
    ec = aws.client("elasticache")
    ec2 = aws.client("ec2")
    check = Parts()

    def subnet_group_ok():
        group = ec.describe_cache_subnet_groups(CacheSubnetGroupName=f"{prefix}-cache-subnets")[
            "CacheSubnetGroups"
        ][0]
        members = {s["SubnetIdentifier"] for s in group["Subnets"]}
        subnet_ids = _data_subnet_ids(ec2, prefix)
        return len(subnet_ids) >= 2 and subnet_ids <= members

    check.part(
        f"the cache subnet group {prefix}-cache-subnets",
        subnet_group_ok,
        why="the cache subnet group does not hold both data subnets",
    )
    group = ec.describe_replication_groups(ReplicationGroupId=f"{prefix}-sessions")[
        "ReplicationGroups"
    ][0]
    shards = group.get("NodeGroups", [])
    layout = check.part(
        "valkey in cluster mode, 2 shards of a primary and a replica",
        group.get("Engine") == "valkey"
        and group.get("CacheNodeType") == "cache.t4g.medium"
        and group.get("ClusterEnabled")
        and len(shards) == 2
        and all(len(s.get("NodeGroupMembers", [])) == 2 for s in shards),
        weight=2,
        why=f"the group runs {group.get('Engine')} on {group.get('CacheNodeType')} with "
        f"{len(shards)} shard(s) of {[len(s.get('NodeGroupMembers', [])) for s in shards]} nodes",
    )
    check.part(
        "automatic failover and Multi-AZ",
        group.get("AutomaticFailover") == "enabled" and group.get("MultiAZ") == "enabled",
        requires=layout,
        why="automatic failover or Multi-AZ is not enabled",
    )
    check.part(
        "encryption in transit and at rest",
        group.get("TransitEncryptionEnabled") and group.get("AtRestEncryptionEnabled"),
        requires=layout,
        why="the group is not encrypted both in transit and at rest",
    )
    check.part(
        "snapshots kept 3 days in 05:00-06:00",
        group.get("SnapshotRetentionLimit") == 3 and group.get("SnapshotWindow") == "05:00-06:00",
        requires=layout,
        why=f"snapshots are kept {group.get('SnapshotRetentionLimit')} days in "
        f"{group.get('SnapshotWindow')}",
    )
    return check


@state_check("ex8_state")
def shop_table_design(aws, prefix):
    """Keys and on-demand (1/3), the overloaded GSI1 (1/3), TTL (1/6), point-in-time recovery (1/6)."""
    ddb = aws.client("dynamodb")
    name = f"{prefix}-shop"
    table = ddb.describe_table(TableName=name)["Table"]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
    check = Parts()
    check.part(
        "the keys PK and SK, on demand",
        keys == {"PK": "HASH", "SK": "RANGE"}
        and types.get("PK") == types.get("SK") == "S"
        and table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST",
        weight=2,
        why=f"the table's keys are {keys} and it is not on demand with string keys",
    )
    indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
    gsi = indexes.get("GSI1", {})
    gsi_keys = {k["AttributeName"]: k["KeyType"] for k in gsi.get("KeySchema", [])}
    check.part(
        "the index GSI1",
        gsi_keys == {"GSI1PK": "HASH", "GSI1SK": "RANGE"}
        and types.get("GSI1PK") == types.get("GSI1SK") == "S"
        and gsi.get("Projection", {}).get("ProjectionType") == "ALL",
        weight=2,
        why="there is no index GSI1 keyed GSI1PK/GSI1SK (strings) projecting all attributes",
    )
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    check.part(
        "TTL on expires_at",
        ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName") == "expires_at",
        why="TTL is not enabled on the attribute expires_at",
    )
    pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    check.part(
        "point-in-time recovery",
        pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        == "ENABLED",
        why="point-in-time recovery is off",
    )
    return check


def _item(ddb, table, pk, sk):
    return ddb.get_item(TableName=table, Key={"PK": {"S": pk}, "SK": {"S": sk}}).get("Item")


def _s(item, name):
    return (item or {}).get(name, {}).get("S")


@state_check("ex9_state")
def shop_items(aws, prefix):
    """The products (2/5), the cart line of cart-78 (1/5), the four orders (2/5), with the design's keys."""
    ddb = aws.client("dynamodb")
    table = f"{prefix}-shop"
    ddb.describe_table(TableName=table)
    check = Parts()

    def products_ok():
        for sku, (category, cents) in PRODUCTS.items():
            item = _item(ddb, table, f"PRODUCT#{sku}", "PRODUCT")
            assert item, f"there is no item PK=PRODUCT#{sku}, SK=PRODUCT"
            assert _s(item, "GSI1PK") == f"CATEGORY#{category}", (
                f"PRODUCT#{sku} has GSI1PK {_s(item, 'GSI1PK')!r}, not CATEGORY#{category}"
            )
            assert _s(item, "GSI1SK") == f"PRICE#{cents:08d}#{sku}", (
                f"PRODUCT#{sku} has GSI1SK {_s(item, 'GSI1SK')!r}: zero-pad the price to 8 digits"
            )
            assert "stock" in item and "name" in item, f"PRODUCT#{sku} lost the record's fields"
        return True

    check.part("the five products", products_ok, weight=2)

    def cart_ok():
        item = _item(ddb, table, "CART#cart-78", "ITEM#TNT-04")
        assert item, "there is no item PK=CART#cart-78, SK=ITEM#TNT-04"
        assert item.get("qty", {}).get("N") == "1", "the cart line lost its quantity"
        assert item.get("expires_at", {}).get("N") == "1893456000", (
            "the cart line's expires_at should stay a number (TTL reads numbers only)"
        )
        return True

    check.part("the cart lines", cart_ok)

    def orders_ok():
        for order_id, (customer, placed_at) in ORDERS.items():
            item = _item(ddb, table, f"CUST#{customer}", f"ORDER#{placed_at}#{order_id}")
            assert item, f"there is no item PK=CUST#{customer}, SK=ORDER#{placed_at}#{order_id}"
            assert _s(item, "GSI1PK") == _s(item, "GSI1SK") == f"ORDER#{order_id}", (
                f"order {order_id} does not carry GSI1PK and GSI1SK = ORDER#{order_id}"
            )
        return True

    check.part("the four orders", orders_ok, weight=2)
    return check


@state_check("ex10_state")
def checkout_transaction(aws, prefix):
    """The order o-1004 (2/5), the stock taken once and never oversold (2/5), the carts (1/5)."""
    ddb = aws.client("dynamodb")
    table = f"{prefix}-shop"
    ddb.describe_table(TableName=table)
    check = Parts()
    order = _item(ddb, table, "CUST#c-ana", "ORDER#2026-12-01T10:00:00Z#o-1004")
    placed = check.part(
        "the order o-1004",
        order
        and _s(order, "status") == "pending"
        and _s(order, "GSI1PK") == "ORDER#o-1004"
        and _s(order, "order_id") == "o-1004",
        weight=2,
        why="there is no pending order o-1004 of c-ana with GSI1PK=ORDER#o-1004",
    )

    def stock(sku):
        item = _item(ddb, table, f"PRODUCT#{sku}", "PRODUCT") or {}
        return item.get("stock", {}).get("N")

    check.part(
        "the stock taken exactly once, never oversold",
        lambda: stock("PAN-02") == "7" and stock("MUG-01") == "38" and stock("TNT-04") == "3",
        weight=2,
        requires=placed,
        why=f"the stock is PAN-02={stock('PAN-02')}, MUG-01={stock('MUG-01')}, "
        f"TNT-04={stock('TNT-04')}; expected 7, 38 and 3 (the oversold tents untouched)",
    )

    def carts_ok():
        lines = ddb.query(
            TableName=table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "CART#cart-77"}},
        )["Items"]
        assert not lines, "cart-77 still has lines"
        assert _item(ddb, table, "CART#cart-79", "ITEM#TNT-04"), (
            "cart-79 lost its line: a cancelled checkout must leave the cart as it was"
        )
        assert _item(ddb, table, "CART#cart-78", "ITEM#TNT-04"), "cart-78 lost its line"
        oversold = ddb.query(
            TableName=table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "ORDER#o-1005"}},
        )["Items"]
        assert not oversold, "the order o-1005 exists: the oversold checkout was not cancelled"
        return True

    check.part("the carts", carts_ok, requires=placed)
    return check


@state_check("ex11_state")
def disaster_recovery(aws, prefix):
    """The global database with the catalog (1/3), the secondary's key (1/6) and instance (1/6), the table backup (1/3)."""
    rds = aws.client("rds")
    region = rds.meta.region_name
    dr = _dr_region(region)
    rds_dr = aws.client("rds", region_name=dr)
    kms_dr = aws.client("kms", region_name=dr)
    check = Parts()

    def members():
        found = rds.describe_global_clusters(GlobalClusterIdentifier=f"{prefix}-catalog-global")[
            "GlobalClusters"
        ][0]
        return {m["DBClusterArn"] for m in found.get("GlobalClusterMembers", [])}

    def primary_in():
        arn = _cluster(rds, f"{prefix}-catalog")["DBClusterArn"]
        return arn in members()

    check.part(
        f"the global database {prefix}-catalog-global with {prefix}-catalog",
        primary_in,
        weight=2,
        why=f"the global database does not hold {prefix}-catalog",
    )

    def secondaries():
        return [
            c
            for c in rds_dr.describe_db_clusters()["DBClusters"]
            if c["DBClusterIdentifier"] == f"{prefix}-catalog-dr" and c["DBClusterArn"] in members()
        ]

    def secondary_key():
        for cluster in secondaries():
            key = cluster.get("KmsKeyId") or ""
            if cluster.get("StorageEncrypted") and key.startswith(f"arn:aws:kms:{dr}:"):
                kms_dr.describe_key(KeyId=key)
                return True
        return False

    check.part(
        f"the secondary {prefix}-catalog-dr encrypted with a key of {dr}",
        secondary_key,
        why=f"there is no cluster {prefix}-catalog-dr in {dr}, in the global database, "
        f"encrypted with a KMS key of {dr}",
    )

    def secondary_instance():
        for cluster in secondaries():
            for member in cluster.get("DBClusterMembers", []):
                db = _instance(rds_dr, member["DBInstanceIdentifier"])
                if db.get("DBInstanceClass") == "db.serverless":
                    return True
        return False

    check.part(
        "a db.serverless instance in the secondary",
        secondary_instance,
        why=f"{prefix}-catalog-dr has no db.serverless instance",
    )
    backups = aws.client("dynamodb").list_backups(TableName=f"{prefix}-shop")["BackupSummaries"]
    check.part(
        f"the on-demand backup {prefix}-shop-golive",
        any(b["BackupName"] == f"{prefix}-shop-golive" for b in backups),
        weight=2,
        why=f"there is no on-demand backup named {prefix}-shop-golive of {prefix}-shop",
    )
    return check
