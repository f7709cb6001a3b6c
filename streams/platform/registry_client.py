"""A client of a Confluent-compatible schema registry (REST, JSON), with caches: a deployment's own registry
(``BOSAI_SCHEMA_REGISTRY_URL``: Confluent Schema Registry, Karapace, Apicurio's ccompat API, or the hub's own
``bosai registry serve``).

Three calls: look a schema up under a subject (``POST /subjects/{subject}``: what a read-only registry such as
the hub's answers), register it there when the subject does not have it yet (``POST
/subjects/{subject}/versions``), and fetch a schema by id. Every failure is a :class:`CodecError` with reason
``registry`` that names the URL.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from streams.platform.avro import AvroSchema, CodecError

_MEDIA = "application/vnd.schemaregistry.v1+json"
_NOT_THERE = (40401, 40403)  # subject not found, schema not found


class RegistryAnswer(CodecError):
    """The registry answered with an error (``status``, Confluent's ``error_code``)."""

    def __init__(self, detail: str, status: int, error_code: int | None):
        super().__init__("registry", detail)
        self.status, self.error_code = status, error_code


class SchemaRegistryClient:
    """Registers, looks up and fetches schemas; ids and texts are cached for the life of the client."""

    def __init__(self, url: str, *, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}
        self._lock = threading.Lock()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": _MEDIA, "Accept": _MEDIA}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()[:300]
            try:
                code = json.loads(text).get("error_code")
            except (ValueError, AttributeError):
                code = None
            raise RegistryAnswer(f"{method} {self.url}{path}: HTTP {exc.code} {text!r}", exc.code, code) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CodecError("registry", f"{method} {self.url}{path}: {exc}") from exc

    @staticmethod
    def _text(schema: AvroSchema) -> str:
        return schema.full or schema.canonical

    def _remember(self, key: tuple[str, str], answer: Any, text: str) -> int:
        try:
            schema_id = int(answer["id"])
        except (TypeError, KeyError, ValueError):
            raise CodecError("registry", f"{self.url}: no schema id in {str(answer)[:200]}") from None
        with self._lock:
            self._ids[key] = schema_id
            self._schemas.setdefault(schema_id, text)
        return schema_id

    def register(self, subject: str, schema: AvroSchema) -> int:
        """The id of ``schema`` under ``subject``: looked up first, registered only when the subject lacks it."""
        text = self._text(schema)
        key = (subject, schema.canonical)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}"
        try:
            answer = self._request("POST", path, {"schema": text})
        except RegistryAnswer as exc:
            if exc.error_code not in _NOT_THERE and exc.status != 404:
                raise
            answer = self._request("POST", f"{path}/versions", {"schema": text})
        return self._remember(key, answer, text)

    def schema_by_id(self, schema_id: int) -> str:
        with self._lock:
            if schema_id in self._schemas:
                return self._schemas[schema_id]
        answer = self._request("GET", f"/schemas/ids/{schema_id}")
        schema = answer.get("schema") if isinstance(answer, dict) else None
        if not isinstance(schema, str):
            raise CodecError(
                "registry", f"GET {self.url}/schemas/ids/{schema_id}: no schema text in {str(answer)[:200]}"
            )
        with self._lock:
            self._schemas[schema_id] = schema
        return schema
