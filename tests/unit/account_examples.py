"""Account descriptions the account tests build and describe (each feature of the format once)."""

from __future__ import annotations

from typing import Any

import yaml

from redis_migration_ops.account.description import (
    ELASTICACHE_ENDPOINT,
    AccountDescription,
    Function,
    parse_account,
    sample_account,
)

ENDPOINT = "master.campaign-cache.x1y2z3.use1.cache.amazonaws.com"
AUTH_ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:campaign/elasticache-auth-Ab12Cd"
KMS_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Values describe-account must never write.
PLAIN_SECRETS = ("hunter2-db-password", "sk_live_51Hxyz", "tls-token-in-url")

RICH_ACCOUNT_YAML = f"""
region: us-east-1
vpc:
  name: campaign
  cidr: 10.50.0.0/16
  secondaryCidrs: [10.51.0.0/16]
  tags: {{Team: telephony}}
  subnets:
  - {{name: private-a, cidr: 10.50.1.0/24, availabilityZone: us-east-1a}}
  - {{name: private-b, cidr: 10.50.2.0/24, availabilityZone: us-east-1b}}
  - {{name: public-a, cidr: 10.50.0.0/24, availabilityZone: us-east-1a}}
  - {{name: extra, cidr: 10.51.1.0/24, availabilityZone: us-east-1a, tags: {{Tier: spare}}}}
  routeTables:
  - {{name: main, main: true}}
  - name: private
    subnets: [private-a, private-b]
    routes: [{{destination: 0.0.0.0/0, target: nat-gateway, natGatewaySubnet: public-a}}]
  - name: public
    subnets: [public-a]
    routes: [{{destination: 0.0.0.0/0, target: internet-gateway}}]
  endpoints:
  - {{service: secretsmanager, subnets: [private-a, private-b], securityGroups: [endpoints]}}
  - {{service: s3, type: Gateway, routeTables: [private]}}
securityGroups:
- name: default
  description: default VPC security group
  ingress: [{{protocol: all, group: default}}]
- {{name: redis-host, description: the Asterisk host}}
- {{name: workers, description: the campaign workers, tags: {{Team: telephony}}}}
- name: endpoints
  description: interface endpoints
  ingress: [{{protocol: tcp, fromPort: 443, toPort: 443, cidr: 10.50.0.0/16, description: the VPC}}]
- name: cache
  description: ElastiCache
  ingress: [{{protocol: tcp, fromPort: 6379, toPort: 6379, group: workers, description: workers}}]
- name: locked
  description: only HTTPS out
  egress: [{{protocol: tcp, fromPort: 443, toPort: 443, cidr: 0.0.0.0/0}}]
instance:
  subnet: private-a
  privateIp: 10.50.1.10
  securityGroups: [redis-host]
  instanceType: t3.medium
  osName: Amazon Linux 2023
  platform: {{name: Amazon Linux, version: "2023"}}
  tags: {{Name: asterisk, Role: pbx}}
elasticache:
  endpoint: {ENDPOINT}
  replicationGroupId: campaign-cache
  description: campaign cache
  engineVersion: "7.1"
  nodeType: cache.t4g.small
  subnetGroup: {{name: campaign-cache, subnets: [private-a, private-b]}}
  parameterGroup: {{name: default.redis7}}
  securityGroups: [cache]
  authTokenEnabled: true
  authTokenSecret: campaign/elasticache-auth
  transitEncryption: true
  atRestEncryption: true
  tags: {{"aws:cloudformation:stack-name": campaign-cache, Team: telephony}}
secrets:
- name: campaign/elasticache-auth
  arn: {AUTH_ARN}
  description: the ElastiCache AUTH token
  kmsKeyArn: {KMS_ARN}
  tags: {{Team: telephony}}
queues:
- {{name: calls-dlq}}
- {{name: calls, visibilityTimeout: 180, deadLetterQueue: calls-dlq, maxReceiveCount: 5}}
functions:
- name: worker-plain
  description: a client with plain-text secrets of its own
  timeout: 30
  memorySize: 256
  environment:
    REDIS_HOST: {ENDPOINT}
    REDIS_PORT: "6379"
    REDIS_AUTH_TOKEN_SECRET_ARN: {AUTH_ARN}
    DB_PASSWORD: {PLAIN_SECRETS[0]}
    stripeApiKey: {PLAIN_SECRETS[1]}
    CACHE_URL: "rediss://:{PLAIN_SECRETS[2]}@{ENDPOINT}:6379/0"
    KMS_KEY_ID: alias/campaign
    LOG_LEVEL: INFO
  vpc: {{subnets: [private-a, private-b], securityGroups: [workers]}}
  reservedConcurrency: 5
  tags: {{"aws:cloudformation:stack-name": campaign-app, Team: telephony}}
  eventSourceMappings: [{{queue: calls, batchSize: 5}}]
  asyncInvoke: [{{maximumEventAgeInSeconds: 3600, maximumRetryAttempts: 1}}]
- name: worker-aliased
  runtime: nodejs20.x
  handler: index.handler
  environment: {{REDIS_HOST: {ENDPOINT}, REDIS_PORT: "6379", STAGE: latest}}
  vpc: {{subnets: [private-a], securityGroups: [workers, locked]}}
  versions:
  - version: "1"
    description: first
    environment: {{REDIS_HOST: {ENDPOINT}, REDIS_PORT: "6379", STAGE: one}}
  - version: "2"
    description: second
    environment: {{REDIS_HOST: {ENDPOINT}, REDIS_PORT: "6379", STAGE: two}}
  aliases:
  - {{name: live, version: "2", additionalVersionWeights: {{"1": 0.2}}, description: canary}}
  - {{name: stable, version: "1"}}
  provisionedConcurrency: [{{qualifier: stable, concurrency: 2}}]
  eventSourceMappings: [{{queue: calls, enabled: false}}]
- name: worker-old-version
  environment: {{REDIS_HOST: analytics.xyz789.0001.use1.cache.amazonaws.com, REDIS_PORT: "6379"}}
  versions:
  - {{version: "1", environment: {{REDIS_HOST: {ENDPOINT}, REDIS_PORT: "6379"}}}}
  aliases:
  - {{name: prod, version: "1"}}
- name: encrypted
  kmsKeyArn: {KMS_ARN}
  environment: {{REDIS_HOST: {ENDPOINT}, REDIS_PORT: "6379"}}
  vpc: {{subnets: [private-b], securityGroups: [workers]}}
- name: billing
  environment: {{BUCKET: campaign-reports}}
stack:
  projectName: campaign
  environment: test
  probeSecurityGroups: [workers]
reservedCacheNodes:
- {{id: ri-campaign-cache, nodeType: cache.t4g.medium, count: 1, start: "2026-01-15T00:00:00Z", years: 3}}
"""


def rich_document() -> dict[str, Any]:
    """The rich account as a parsed document (a fresh copy each time, for tests that break it)."""
    document: dict[str, Any] = yaml.safe_load(RICH_ACCOUNT_YAML)
    return document


def rich_account() -> AccountDescription:
    return parse_account(rich_document(), "rich account")


# -- an account whose functions name the cache in every way a client does (issue 16) ------------------

# The sample account's ElastiCache, with two nodes: ElastiCache names its reader and nodes after the
# primary (description.derived_endpoints).
FORMS_PRIMARY = ELASTICACHE_ENDPOINT
FORMS_READER = "campaign-redis-ro.abc123.0001.use1.cache.amazonaws.com"
FORMS_NODE = "campaign-redis-002.abc123.0001.use1.cache.amazonaws.com"
# Function -> the variables that name the cache (the rest of its environment is the sample's).
FORMS: dict[str, dict[str, str]] = {
    "dialer-tls-url": {"REDIS_URL": f"rediss://{FORMS_PRIMARY}:6379/0"},
    "dialer-user-url": {"REDIS_URL": f"redis://app-user@{FORMS_PRIMARY}:6379/2?socket_timeout=5"},
    "reporter-pair": {"CACHE_ENDPOINT": f"{FORMS_PRIMARY}:6379"},
    "reader-reports": {"REDIS_READER_HOST": FORMS_READER},
    "node-pinned": {"REDIS_NODE": FORMS_NODE},
    "upper-case": {"REDIS_HOST": FORMS_PRIMARY.upper(), "REDIS_PORT": "6379"},
    "trailing-dot": {"CACHE_HOST": FORMS_PRIMARY + "."},
}
# What each becomes on the self-hosted Redis (at ``{ip}``): the form kept, TLS off (issue 18 adds it).
FORMS_AFTER: dict[str, dict[str, str]] = {
    "dialer-tls-url": {"REDIS_URL": "redis://{ip}:6379/0"},
    "dialer-user-url": {"REDIS_URL": "redis://app-user@{ip}:6379/2?socket_timeout=5"},
    "reporter-pair": {"CACHE_ENDPOINT": "{ip}:6379"},
    "reader-reports": {"REDIS_READER_HOST": "{ip}"},
    "node-pinned": {"REDIS_NODE": "{ip}"},
    "upper-case": {"REDIS_HOST": "{ip}", "REDIS_PORT": "6379"},
    "trailing-dot": {"CACHE_HOST": "{ip}"},
}


def forms_account(*extra: Function) -> AccountDescription:
    """The sample account with one plain client, two ElastiCache nodes, and a function for each way
    of naming the cache in FORMS (each also reading the old AUTH token's secret, as the sample's do);
    ``extra`` functions are added as given."""
    sample = sample_account(1)
    worker = sample.functions[0]
    kept = {
        key: value for key, value in worker.environment.items() if key not in ("REDIS_HOST", "REDIS_PORT")
    }
    functions = [
        worker.model_copy(update={"name": name, "environment": {**kept, **variables}})
        for name, variables in FORMS.items()
    ]
    return sample.model_copy(
        update={
            "elasticache": sample.elasticache.model_copy(update={"node_count": 2}),
            "functions": [*sample.functions, *functions, *extra],
        }
    )
