"""The pure core: what the hub knows and decides, as plain typed values and functions.

Domain values (stations, municipalities, hazard zones, readings, alert states), geofencing, reading
validation, rule evaluation, the alert lifecycle, CAP/Atom rendering, topic naming and the access policy.
Imports nothing from the other layers and no I/O library (no Kafka, HTTP, YAML, files, processes,
logging or clock): event time is passed in, so a replay at any speed gives the same alerts.
"""
