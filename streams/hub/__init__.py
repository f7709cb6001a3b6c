"""The hub's worker runtime: one consumer group reading a region's readings and reports (``batch_loop``), a
transactional writer per input partition (``partition``), the Faust-hosted worker process (``worker``), worker
processes supervised, restarted whatever ended them (``restarts``: the policy) and stopped by pid
(``processes``), and replays of real data (``replay``, ``replay_input``,
with the demo's terminal view ``live_view``).
"""

__requires__ = ("platform", "packs", "observed", "official")

__layers__ = {
    "pure": ["restarts"],
    "process": ["partition", "batch_loop", "worker", "processes", "replay_input", "live_view", "replay"],
}
