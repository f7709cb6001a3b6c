"""Kafka admin requests aiokafka has no client method for: ACLs and SCRAM credentials.

aiokafka 0.14 ships the CreateAcls/DescribeAcls/DeleteAcls request structs but no admin methods, and
has no AlterUserScramCredentials/DescribeUserScramCredentials (KIP-554) at all. This module defines
the two SCRAM requests with aiokafka's own protocol types (flexible versions, compact fields) and sends
all five through an ``AIOKafkaAdminClient`` connection, so no JVM tool is needed.

SCRAM: the client derives the salted password itself (RFC 5802 ``Hi`` = PBKDF2-HMAC-SHA-512 for
SCRAM-SHA-512); the cleartext password never leaves this process.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.errors import for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from streams.errors import BosaiError

# Kafka's enum codes (org.apache.kafka.common.resource / acl).
RESOURCE_TYPES = {"any": 1, "topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
PATTERN_TYPES = {"any": 1, "match": 2, "literal": 3, "prefixed": 4}
OPERATIONS = {"any": 1, "all": 2, "read": 3, "write": 4, "create": 5, "delete": 6, "alter": 7, "describe": 8,
              "cluster_action": 9, "describe_configs": 10, "alter_configs": 11, "idempotent_write": 12}
PERMISSIONS = {"any": 1, "deny": 2, "allow": 3}
SCRAM_SHA_512 = 2
SCRAM_ITERATIONS = 8192

_NAMES = {table_id: {v: k for k, v in table.items()}
          for table_id, table in (("resource", RESOURCE_TYPES), ("pattern", PATTERN_TYPES),
                                  ("operation", OPERATIONS), ("permission", PERMISSIONS))}


class AdminRequestError(BosaiError):
    """The broker refused an ACL or credential request."""


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ACL: principal may (or may not) do operation on the resource pattern, from host."""

    principal: str        # "User:muni-09201"
    resource_type: str    # topic | group | cluster | transactional_id
    pattern_type: str     # literal | prefixed
    resource_name: str
    operation: str        # read | write | describe | ...
    permission: str = "allow"
    host: str = "*"

    def describe(self) -> str:
        return (f"{self.permission.upper()} {self.principal} {self.operation.upper()} "
                f"{self.resource_type.upper()}:{self.resource_name}"
                f"{'*' if self.pattern_type == 'prefixed' else ''}"
                f"{'' if self.host == '*' else ' from ' + self.host}")

    def wire(self) -> tuple:
        return (RESOURCE_TYPES[self.resource_type], self.resource_name, PATTERN_TYPES[self.pattern_type],
                self.principal, self.host, OPERATIONS[self.operation], PERMISSIONS[self.permission])


# -- SCRAM request structs (KIP-554; flexible from v0) ------------------------------------------

class DescribeUserScramCredentialsResponse_v0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        ("results", CompactArray(
            ("user", CompactString("utf-8")),
            ("error_code", Int16),
            ("error_message", CompactString("utf-8")),
            ("credential_infos", CompactArray(("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields))),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class DescribeUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = DescribeUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(
            ("user", CompactString("utf-8")),
            ("error_code", Int16),
            ("error_message", CompactString("utf-8")),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
        ("upsertions", CompactArray(
            ("name", CompactString("utf-8")),
            ("mechanism", Int8),
            ("iterations", Int32),
            ("salt", CompactBytes),
            ("salted_password", CompactBytes),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class _DescribeScram(Request[DescribeUserScramCredentialsRequest_v0]):
    API_KEY = 50

    def __init__(self, users: list[str] | None):
        self._users = users

    def build(self, request_struct_class):
        users = None if self._users is None else [(u, {}) for u in self._users]
        return request_struct_class(users, {})


class _AlterScram(Request[AlterUserScramCredentialsRequest_v0]):
    API_KEY = 51

    def __init__(self, deletions: list[tuple], upsertions: list[tuple]):
        self._deletions = deletions
        self._upsertions = upsertions

    def build(self, request_struct_class):
        return request_struct_class(self._deletions, self._upsertions, {})


class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, creations: list[tuple]):
        self._creations = creations

    def build(self, request_struct_class):
        return request_struct_class(self._creations)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, filters: list[tuple]):
        self._filters = filters

    def build(self, request_struct_class):
        return request_struct_class(self._filters)


class _DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def build(self, request_struct_class):
        # Match everything: ANY resource, null name, ANY pattern, null principal/host, ANY op/permission.
        return request_struct_class(RESOURCE_TYPES["any"], None, PATTERN_TYPES["any"], None, None,
                                    OPERATIONS["any"], PERMISSIONS["any"])


def _raise_for(error_code: int, message: str | None, what: str) -> None:
    if error_code:
        error = for_code(error_code)
        raise AdminRequestError(f"{what}: {error.__name__} ({error_code}){': ' + message if message else ''}")


# -- the calls ------------------------------------------------------------------------------------

async def describe_acls(admin) -> set[AclBinding]:
    """Every ACL binding on the cluster."""
    response = await admin._send_request(_DescribeAcls())
    _raise_for(response.error_code, response.error_message, "DescribeAcls")
    found = set()
    for resource_type, resource_name, pattern_type, acls in response.resources:
        for principal, host, operation, permission in acls:
            found.add(AclBinding(principal=principal, resource_type=_NAMES["resource"][resource_type],
                                 pattern_type=_NAMES["pattern"][pattern_type], resource_name=resource_name,
                                 operation=_NAMES["operation"][operation],
                                 permission=_NAMES["permission"][permission], host=host))
    return found


async def create_acls(admin, bindings: Iterable[AclBinding]) -> None:
    wanted = sorted(bindings)
    if not wanted:
        return
    response = await admin._send_request(_CreateAcls([b.wire() for b in wanted]))
    for binding, (error_code, message) in zip(wanted, response.creation_responses):
        _raise_for(error_code, message, f"CreateAcls {binding.describe()}")


async def delete_acls(admin, bindings: Iterable[AclBinding]) -> None:
    doomed = sorted(bindings)
    if not doomed:
        return
    response = await admin._send_request(_DeleteAcls([b.wire() for b in doomed]))
    for binding, (error_code, message, _matching) in zip(doomed, response.filter_responses):
        _raise_for(error_code, message, f"DeleteAcls {binding.describe()}")


async def scram_users(admin) -> dict[str, int]:
    """Users with a SCRAM-SHA-512 credential, with its iteration count."""
    response = await admin._send_request(_DescribeScram(None))
    _raise_for(response.error_code, response.error_message, "DescribeUserScramCredentials")
    users = {}
    for user, error_code, _message, infos, _tags in response.results:
        if error_code:
            continue
        for mechanism, iterations, _t in infos:
            if mechanism == SCRAM_SHA_512:
                users[user] = iterations
    return users


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """RFC 5802 Hi(password, salt, i) for SCRAM-SHA-512 (what the broker stores, with the salt)."""
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)


async def upsert_scram(admin, user: str, password: str) -> None:
    """Create or replace user's SCRAM-SHA-512 credential."""
    salt = secrets.token_bytes(32)
    upsertion = (user, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted_password(password, salt), {})
    response = await admin._send_request(_AlterScram([], [upsertion]))
    for result_user, error_code, message, _tags in response.results:
        _raise_for(error_code, message, f"AlterUserScramCredentials (upsert {result_user})")


async def delete_scram(admin, user: str) -> bool:
    """Remove user's SCRAM-SHA-512 credential; False when it had none."""
    response = await admin._send_request(_AlterScram([(user, SCRAM_SHA_512, {})], []))
    for result_user, error_code, message, _tags in response.results:
        if error_code == 91:  # RESOURCE_NOT_FOUND: no such credential
            return False
        _raise_for(error_code, message, f"AlterUserScramCredentials (delete {result_user})")
    return True
