"""FIWARE: the hub's events as NGSI-v2 entities in each configured Orion (``ngsi``, ``bridge``, ``bridge_file``),
Orion's notifications in (``ngsi_in``, ``orion_table``, ``subscribe``), the Orion client (``orion``) and the
Smart Data Models schemas it validates against (``ngsi_schemas``).
"""

__requires__ = ("platform", "packs", "security", "observed", "delivery")

__layers__ = {
    "pure": ["ngsi", "ngsi_in"],
    "files": ["bridge_file", "orion_table"],
    "io": ["ngsi_schemas", "orion"],
    "process": ["bridge", "subscribe"],
}
