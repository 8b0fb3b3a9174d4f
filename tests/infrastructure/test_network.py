"""The network: isolated, observable, and reachable only security group to security group."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Capture, Match, Template

from stacks.config import EnvironmentConfig

CACHE_PORT, DATABASE_PORT, HTTPS_PORT = 6379, 5432, 443


def resources_of_type(template_json: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template_json["Resources"].items() if value["Type"] == resource_type}


def _security_group_rules(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ingress and egress rule, standalone or inline, with its direction.

    The rule tests below state invariants over all of them, which Match cannot say (it has no "every
    element" matcher across resource types and inline lists), so they read the rules from the JSON.
    """
    rules = []
    for kind, direction in (("AWS::EC2::SecurityGroupIngress", "in"), ("AWS::EC2::SecurityGroupEgress", "out")):
        rules += [{"direction": direction, **r["Properties"]} for r in resources_of_type(template_json, kind).values()]
    for group in resources_of_type(template_json, "AWS::EC2::SecurityGroup").values():
        for key, direction in (("SecurityGroupIngress", "in"), ("SecurityGroupEgress", "out")):
            rules += [{"direction": direction, **rule} for rule in group["Properties"].get(key, [])]
    return rules


def test_the_vpc_spans_two_azs_with_isolated_subnets_only(template: Template) -> None:
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::Subnet", 2)
    template.all_resources_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": False})
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::EIP", 0)
    template.resource_count_is("AWS::EC2::Route", 0)


def test_the_two_subnets_are_in_different_azs(template: Template) -> None:
    zones = Capture()
    template.all_resources_properties("AWS::EC2::Subnet", {"AvailabilityZone": zones})

    seen = [str(zones.as_object())]
    while zones.next():
        seen.append(str(zones.as_object()))
    assert len(seen) == 2 and len(set(seen)) == 2


def test_all_vpc_traffic_is_flow_logged_to_cloudwatch(template: Template, config: EnvironmentConfig) -> None:
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": config.log_retention_days})


def test_secrets_manager_is_reached_through_a_private_endpoint(template: Template, config: EnvironmentConfig) -> None:
    subnets = Capture()
    # Secrets Manager, and Lambda (the push publisher's invoke); no KMS endpoint: every key is AWS-managed
    template.resource_count_is("AWS::EC2::VPCEndpoint", 2)
    for service in (".secretsmanager", ".lambda"):
        template.has_resource_properties(
            "AWS::EC2::VPCEndpoint",
            {
                "VpcEndpointType": "Interface",
                "PrivateDnsEnabled": True,
                "ServiceName": {"Fn::Join": ["", Match.array_with([service])]},
                "SubnetIds": subnets,
            },
        )
        assert len(subnets.as_array()) == config.network.endpoint_az_count


def test_cache_and_database_ports_are_opened_only_between_security_groups(template_json: dict[str, Any]) -> None:
    data_rules = [r for r in _security_group_rules(template_json) if r.get("FromPort") in (CACHE_PORT, DATABASE_PORT)]

    assert data_rules, "expected rules for the cache and database ports"
    for rule in data_rules:
        peer = (
            rule.get("SourceSecurityGroupId") if rule["direction"] == "in" else rule.get("DestinationSecurityGroupId")
        )
        assert peer is not None and "CidrIp" not in rule and "CidrIpv6" not in rule, rule
        assert rule["FromPort"] == rule["ToPort"] and rule["IpProtocol"] == "tcp", rule


def test_only_the_endpoints_accept_the_vpc_range_and_only_on_https(
    template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    cidr_ingress = [r for r in _security_group_rules(template_json) if r["direction"] == "in" and "CidrIp" in r]

    assert [(r["CidrIp"], r["FromPort"], r["ToPort"]) for r in cidr_ingress] == [
        (config.network.vpc_cidr, HTTPS_PORT, HTTPS_PORT)
    ]


def test_no_security_group_opens_egress_to_the_internet(template_json: dict[str, Any]) -> None:
    for rule in _security_group_rules(template_json):
        if rule["direction"] == "out" and "CidrIp" in rule:
            assert rule["CidrIp"] == "255.255.255.255/32", rule  # CDK's "no egress" placeholder


def test_the_default_security_group_is_stripped_of_its_rules(template: Template) -> None:
    template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)
