"""Long-running processes, each one thing: the hub worker of a region, replay, the webhook sink, the
Atom/CAP feed server, tail, the demo's live view, and the worker processes they start and stop by pid.

They wire Kafka (through adapters) to the pipeline and the core, and handle signals, progress and
restarts. May import pipeline, adapters, config and core; never cli.
"""
