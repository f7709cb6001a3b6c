"""Kafka admin requests aiokafka has no client method for (ACLs and SCRAM credentials): the wire structs.

aiokafka 0.14 ships the CreateAcls/DescribeAcls/DeleteAcls request structs but no admin methods, and
has no AlterUserScramCredentials/DescribeUserScramCredentials (KIP-554) at all. This module defines
the two SCRAM requests with aiokafka's own protocol types (flexible versions, compact fields);
:mod:`streams.platform.kafka_admin` sends all five through an ``AIOKafkaAdminClient`` connection, so no
JVM tool is needed.

SCRAM: the client derives the salted password itself (RFC 5802 ``Hi`` = PBKDF2-HMAC-SHA-512 for
SCRAM-SHA-512); the cleartext password never leaves this process.
"""

from __future__ import annotations

from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest_v1
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactBytes, CompactString, Int8, Int16, Int32, Schema, TaggedFields

from streams.kernel.access import AclBinding
from streams.kernel.errors import BosaiError

# Kafka's enum codes (org.apache.kafka.common.resource / acl).
RESOURCE_TYPES = {"any": 1, "topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
PATTERN_TYPES = {"any": 1, "match": 2, "literal": 3, "prefixed": 4}
OPERATIONS = {
    "any": 1,
    "all": 2,
    "read": 3,
    "write": 4,
    "create": 5,
    "delete": 6,
    "alter": 7,
    "describe": 8,
    "cluster_action": 9,
    "describe_configs": 10,
    "alter_configs": 11,
    "idempotent_write": 12,
}
PERMISSIONS = {"any": 1, "deny": 2, "allow": 3}
SCRAM_SHA_512 = 2
SCRAM_ITERATIONS = 8192

_NAMES = {
    table_id: {v: k for k, v in table.items()}
    for table_id, table in (
        ("resource", RESOURCE_TYPES),
        ("pattern", PATTERN_TYPES),
        ("operation", OPERATIONS),
        ("permission", PERMISSIONS),
    )
}


class AdminRequestError(BosaiError):
    """The broker refused an ACL or credential request."""


# An ACL binding as CreateAcls/DeleteAcls carry it: resource type, name, pattern type, principal, host,
# operation, permission (the codes of the tables above).
AclWire = tuple[int, str, int, str, str, int, int]
TaggedFieldValues = dict[int, bytes]  # a flexible request's tagged fields (the hub sends none)
ScramDeletion = tuple[str, int, TaggedFieldValues]  # user, mechanism
ScramUpsertion = tuple[str, int, int, bytes, bytes, TaggedFieldValues]  # user, mechanism, iterations, salt, salted


def acl_wire(binding: AclBinding) -> AclWire:
    """An ACL binding as the CreateAcls/DeleteAcls structs take it."""
    return (
        RESOURCE_TYPES[binding.resource_type],
        binding.resource_name,
        PATTERN_TYPES[binding.pattern_type],
        binding.principal,
        binding.host,
        OPERATIONS[binding.operation],
        PERMISSIONS[binding.permission],
    )


def acl_of(
    resource_type: int,
    resource_name: str,
    pattern_type: int,
    principal: str,
    host: str,
    operation: int,
    permission: int,
) -> AclBinding:
    """An ACL binding from a DescribeAcls answer."""
    return AclBinding(
        principal=principal,
        resource_type=_NAMES["resource"][resource_type],
        pattern_type=_NAMES["pattern"][pattern_type],
        resource_name=resource_name,
        operation=_NAMES["operation"][operation],
        permission=_NAMES["permission"][permission],
        host=host,
    )


def raise_for(error_code: int, message: str | None, what: str) -> None:
    if error_code:
        error = for_code(error_code)
        raise AdminRequestError(
            f"{what}: {error.__name__} ({error_code}){': ' + message if message else ''}"
        ) from error(message)


# -- SCRAM request structs (KIP-554; flexible from v0) ------------------------------------------


class DescribeUserScramCredentialsResponse_v0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("credential_infos", CompactArray(("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields))),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = DescribeUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))), ("tags", TaggedFields)
    )


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeScram(Request[DescribeUserScramCredentialsRequest_v0]):
    API_KEY = 50

    def __init__(self, users: list[str] | None) -> None:
        self._users = users

    def build(self, request_struct_class: type[RequestStruct]) -> RequestStruct:
        users = None if self._users is None else [(u, TaggedFieldValues()) for u in self._users]
        return request_struct_class(users, {})


class AlterScram(Request[AlterUserScramCredentialsRequest_v0]):
    API_KEY = 51

    def __init__(self, deletions: list[ScramDeletion], upsertions: list[ScramUpsertion]) -> None:
        self._deletions = deletions
        self._upsertions = upsertions

    def build(self, request_struct_class: type[RequestStruct]) -> RequestStruct:
        return request_struct_class(self._deletions, self._upsertions, {})


class CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, creations: list[AclWire]) -> None:
        self._creations = creations

    def build(self, request_struct_class: type[RequestStruct]) -> RequestStruct:
        return request_struct_class(self._creations)


class DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, filters: list[AclWire]) -> None:
        self._filters = filters

    def build(self, request_struct_class: type[RequestStruct]) -> RequestStruct:
        return request_struct_class(self._filters)


class DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def build(self, request_struct_class: type[RequestStruct]) -> RequestStruct:
        # Match everything: ANY resource, null name, ANY pattern, null principal/host, ANY op/permission.
        return request_struct_class(
            RESOURCE_TYPES["any"], None, PATTERN_TYPES["any"], None, None, OPERATIONS["any"], PERMISSIONS["any"]
        )
