"""The service layer: one batch of messages through the core, and the records it produces.

``readings.Pipeline`` processes sensor readings (decode, validate, geofence, rules, lifecycle, fan-out,
encode); ``official.OfficialPipeline`` processes official reports (JMA's XML: decode, parse safely,
validate against JMA's schema, the relayed-alert lifecycle, fan-out, and a flood forecast's observed
levels as readings). A pipeline takes a batch of consumed messages (``core.messages.InMessage``) and a
function giving the current state of a key, and returns a ``BatchResult``: the records to write
(``core.messages.OutRecord``), the new states, and the figures the metrics need. No Kafka client here:
the runtime moves bytes between Kafka and these functions, so everything they decide is unit-tested
without a broker. May import adapters (the Avro codec, safe XML parsing), config and core; never
runtime or cli.
"""

from streams.pipeline.official import OfficialPipeline
from streams.pipeline.readings import CAP_SHARING, AlertOut, BatchResult, Pipeline

__all__ = ["CAP_SHARING", "AlertOut", "BatchResult", "OfficialPipeline", "Pipeline"]
