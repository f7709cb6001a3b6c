"""The sensor gateway: municipal sensors' readings in over HTTP (``intake``: JSON into SensorReading records and
rate limits), their owners (``owners``) and the server with its Orion notification door (``server``).
"""

__requires__ = ("platform", "packs", "security", "observed", "fiware")

__layers__ = {"pure": ["intake"], "files": ["owners"], "process": ["server"]}
