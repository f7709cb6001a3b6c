"""The functional core imports no Kafka, Faust, Avro or Prometheus code."""

from __future__ import annotations

import subprocess
import sys

CORE = ["streams.model", "streams.geo", "streams.rules"]
FORBIDDEN = ["faust", "aiokafka", "fastavro", "prometheus_client", "mode"]


def test_core_modules_import_nothing_of_the_stream_shell():
    code = (f"import sys; import {', '.join(CORE)}; "
            f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))")

    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    assert loaded == ""
