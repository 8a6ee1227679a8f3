"""What the emulator stores for RDS, Aurora and ElastiCache: every field the databases lab grades.

The databases lab grades configuration only (no engine runs), so each field its checks read is
asserted here: if a LocalStack or moto update stops storing one, this fails before the lab does.
"""

from __future__ import annotations

PASSWORD = "Test-only-pw1"


def _subnets(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    return [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (("10.40.21.0/24", "us-east-1a"), ("10.40.22.0/24", "us-east-1b"))
    ]


def _key(aws, region="us-east-1"):
    return aws.client("kms", region_name=region).create_key()["KeyMetadata"]["Arn"]


def _primary(aws):
    rds = aws.client("rds")
    subnets = _subnets(aws)
    rds.create_db_subnet_group(
        DBSubnetGroupName="db", DBSubnetGroupDescription="d", SubnetIds=subnets
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="pg", DBParameterGroupFamily="postgres16", Description="d"
    )
    key = _key(aws)
    rds.create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        EngineVersion="16.4",
        DBInstanceClass="db.t4g.medium",
        MasterUsername="shopadmin",
        MasterUserPassword=PASSWORD,
        StorageType="gp3",
        AllocatedStorage=100,
        MaxAllocatedStorage=500,
        MultiAZ=True,
        DBSubnetGroupName="db",
        DBParameterGroupName="pg",
        PubliclyAccessible=False,
        StorageEncrypted=True,
        KmsKeyId=key,
        BackupRetentionPeriod=7,
        PreferredBackupWindow="03:00-03:30",
        PreferredMaintenanceWindow="sun:04:00-sun:04:30",
        EnableIAMDatabaseAuthentication=True,
        DeletionProtection=True,
        CopyTagsToSnapshot=True,
    )
    return rds, subnets, key


def test_subnet_and_parameter_groups_are_stored(aws):
    rds, subnets, _ = _primary(aws)
    group = rds.describe_db_subnet_groups(DBSubnetGroupName="db")["DBSubnetGroups"][0]
    assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted(subnets)
    assert {s["SubnetAvailabilityZone"]["Name"] for s in group["Subnets"]} == {
        "us-east-1a",
        "us-east-1b",
    }
    rds.modify_db_parameter_group(
        DBParameterGroupName="pg",
        Parameters=[
            {
                "ParameterName": "rds.force_ssl",
                "ParameterValue": "1",
                "ApplyMethod": "pending-reboot",
            }
        ],
    )
    pg = rds.describe_db_parameter_groups(DBParameterGroupName="pg")["DBParameterGroups"][0]
    assert pg["DBParameterGroupFamily"] == "postgres16"
    values = {
        p["ParameterName"]: p.get("ParameterValue")
        for p in rds.describe_db_parameters(DBParameterGroupName="pg")["Parameters"]
    }
    assert values["rds.force_ssl"] == "1"


def test_instance_settings_are_stored(aws):
    rds, _, key = _primary(aws)
    db = rds.describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0]
    assert db["MultiAZ"] is True
    assert db["StorageEncrypted"] is True and db["KmsKeyId"] == key
    assert (db["StorageType"], db["AllocatedStorage"], db["MaxAllocatedStorage"]) == (
        "gp3",
        100,
        500,
    )
    assert (db["BackupRetentionPeriod"], db["PreferredBackupWindow"]) == (7, "03:00-03:30")
    assert db["PreferredMaintenanceWindow"] == "sun:04:00-sun:04:30"
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "db"
    assert [g["DBParameterGroupName"] for g in db["DBParameterGroups"]] == ["pg"]
    assert db["PubliclyAccessible"] is False
    assert db["IAMDatabaseAuthenticationEnabled"] and db["DeletionProtection"]
    assert db["CopyTagsToSnapshot"] is True
    assert db["Endpoint"]["Address"]


def test_replica_snapshot_share_and_restore_are_stored(aws):
    rds, _, key = _primary(aws)
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="reports",
        SourceDBInstanceIdentifier="orders",
        DBInstanceClass="db.t4g.medium",
        AvailabilityZone="us-east-1b",
    )
    replica = rds.describe_db_instances(DBInstanceIdentifier="reports")["DBInstances"][0]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == "orders"
    assert (replica["DBInstanceClass"], replica["AvailabilityZone"]) == (
        "db.t4g.medium",
        "us-east-1b",
    )

    rds.create_db_snapshot(
        DBInstanceIdentifier="orders",
        DBSnapshotIdentifier="prelaunch",
        Tags=[{"Key": "purpose", "Value": "prelaunch"}],
    )
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="prelaunch", AttributeName="restore", ValuesToAdd=["444455556666"]
    )
    snap = rds.describe_db_snapshots(DBSnapshotIdentifier="prelaunch")["DBSnapshots"][0]
    assert (snap["SnapshotType"], snap["DBInstanceIdentifier"]) == ("manual", "orders")
    assert {"Key": "purpose", "Value": "prelaunch"} in snap["TagList"]
    assert snap["KmsKeyId"] == key
    attrs = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier="prelaunch")[
        "DBSnapshotAttributesResult"
    ]["DBSnapshotAttributes"]
    assert {"AttributeName": "restore", "AttributeValues": ["444455556666"]} in attrs

    rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="restore-test",
        DBSnapshotIdentifier="prelaunch",
        DBInstanceClass="db.t4g.small",
        DBSubnetGroupName="db",
        DBParameterGroupName="pg",
    )
    restored = rds.describe_db_instances(DBInstanceIdentifier="restore-test")["DBInstances"][0]
    assert restored["DBInstanceClass"] == "db.t4g.small"
    assert [g["DBParameterGroupName"] for g in restored["DBParameterGroups"]] == ["pg"]
    assert restored["StorageEncrypted"] and restored["KmsKeyId"] == key
    assert restored["MasterUsername"] == "shopadmin"


def test_aurora_cluster_failover_and_global_database_are_stored(aws):
    rds, _, key = _primary(aws)
    rds.create_db_cluster(
        DBClusterIdentifier="catalog",
        Engine="aurora-postgresql",
        EngineVersion="16.4",
        MasterUsername="shopadmin",
        MasterUserPassword=PASSWORD,
        DBSubnetGroupName="db",
        StorageEncrypted=True,
        KmsKeyId=key,
        BackupRetentionPeriod=14,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 16},
    )
    for n, tier in ((1, 0), (2, 1)):
        rds.create_db_instance(
            DBInstanceIdentifier=f"catalog-{n}",
            DBClusterIdentifier="catalog",
            Engine="aurora-postgresql",
            DBInstanceClass="db.serverless",
            PromotionTier=tier,
        )
    cluster = rds.describe_db_clusters(DBClusterIdentifier="catalog")["DBClusters"][0]
    assert cluster["StorageEncrypted"] and cluster["KmsKeyId"] == key
    assert cluster["BackupRetentionPeriod"] == 14
    assert cluster["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 16}
    assert cluster["Endpoint"] != cluster["ReaderEndpoint"]
    tiers = {m["DBInstanceIdentifier"]: m["PromotionTier"] for m in cluster["DBClusterMembers"]}
    assert tiers == {"catalog-1": 0, "catalog-2": 1}
    assert (
        rds.describe_db_instances(DBInstanceIdentifier="catalog-2")["DBInstances"][0][
            "DBInstanceClass"
        ]
        == "db.serverless"
    )

    rds.failover_db_cluster(DBClusterIdentifier="catalog", TargetDBInstanceIdentifier="catalog-2")
    members = rds.describe_db_clusters(DBClusterIdentifier="catalog")["DBClusters"][0][
        "DBClusterMembers"
    ]
    assert [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]] == ["catalog-2"]

    rds.create_global_cluster(
        GlobalClusterIdentifier="catalog-global", SourceDBClusterIdentifier=cluster["DBClusterArn"]
    )
    west = aws.client("rds", region_name="us-west-2")
    west_key = _key(aws, "us-west-2")
    west.create_db_cluster(
        DBClusterIdentifier="catalog-dr",
        Engine="aurora-postgresql",
        EngineVersion="16.4",
        GlobalClusterIdentifier="catalog-global",
        StorageEncrypted=True,
        KmsKeyId=west_key,
    )
    west.create_db_instance(
        DBInstanceIdentifier="catalog-dr-1",
        DBClusterIdentifier="catalog-dr",
        Engine="aurora-postgresql",
        DBInstanceClass="db.serverless",
    )
    found = rds.describe_global_clusters(GlobalClusterIdentifier="catalog-global")["GlobalClusters"]
    arns = {m["DBClusterArn"] for m in found[0]["GlobalClusterMembers"]}
    secondary = west.describe_db_clusters(DBClusterIdentifier="catalog-dr")["DBClusters"][0]
    assert arns == {cluster["DBClusterArn"], secondary["DBClusterArn"]}
    assert secondary["KmsKeyId"] == west_key
    assert [m["DBInstanceIdentifier"] for m in secondary["DBClusterMembers"]] == ["catalog-dr-1"]


def test_elasticache_replication_group_is_stored(aws):
    ec = aws.client("elasticache")
    subnets = _subnets(aws)
    ec.create_cache_subnet_group(
        CacheSubnetGroupName="cache", CacheSubnetGroupDescription="d", SubnetIds=subnets
    )
    group = ec.describe_cache_subnet_groups(CacheSubnetGroupName="cache")["CacheSubnetGroups"][0]
    assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted(subnets)
    ec.create_replication_group(
        ReplicationGroupId="sessions",
        ReplicationGroupDescription="d",
        Engine="valkey",
        CacheNodeType="cache.t4g.medium",
        ClusterMode="enabled",
        NumNodeGroups=2,
        ReplicasPerNodeGroup=1,
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
        TransitEncryptionEnabled=True,
        AtRestEncryptionEnabled=True,
        CacheSubnetGroupName="cache",
        SnapshotRetentionLimit=3,
        SnapshotWindow="05:00-06:00",
    )
    rg = ec.describe_replication_groups(ReplicationGroupId="sessions")["ReplicationGroups"][0]
    assert (rg["Engine"], rg["CacheNodeType"], rg["ClusterEnabled"]) == (
        "valkey",
        "cache.t4g.medium",
        True,
    )
    assert [len(s["NodeGroupMembers"]) for s in rg["NodeGroups"]] == [2, 2]
    assert (rg["AutomaticFailover"], rg["MultiAZ"]) == ("enabled", "enabled")
    assert rg["TransitEncryptionEnabled"] and rg["AtRestEncryptionEnabled"]
    assert (rg["SnapshotRetentionLimit"], rg["SnapshotWindow"]) == (3, "05:00-06:00")
    assert rg["ConfigurationEndpoint"]["Address"]
