"""The shared kernel: what every feature of the hub speaks — pure values and functions, no I/O.

Domain values (``model``: stations, municipalities, hazard zones), event time (``times``), geofencing (``geo``),
a region pack as a value (``region``), threshold rules and their levels (``rules``), **the alert model**
(``alerts``: one level type, one transition kind, alert ids, the Alert and DeadLetter records), topic names
(``topics``), who may see what (``access``), messages in and records out (``messages``), a batch's result
(``batch``), bounded JSON input (``json_input``), secrets out of text (``redact``), errors (``errors``).
Imports no other package of the hub and no I/O library, opens no file and reads no clock.
"""

__layers__ = {
    "pure": [
        "errors",
        "times",
        "model",
        "geo",
        "topics",
        "messages",
        "json_input",
        "redact",
        "rules",
        "alerts",
        "dead_letters",
        "access",
        "region",
        "batch",
    ]
}
