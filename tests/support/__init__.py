"""What the tests share, imported as ``tests.support.<module>`` (no test imports a conftest; fixtures stay there).

* ``architecture``: the checker of ``streams/``'s feature packages and their inner layers;
* ``jma_samples``: JMA's real sample reports (``data/jma/``) and edited copies of them;
* ``stand_ins``: JMA's Atom feed and AMeDAS map files served from loopback (the pollers' tests);
* ``orion_standin``: a FIWARE Orion (NGSI-v2) stand-in that refuses what Orion refuses, and the Nasushiobara pack;
* ``orion_env``: the stand-in, or a real Orion named by ``BOSAI_ORION_URL``, for the bridge's tests;
* ``web_data``, ``web_hub``: alerts and readings for the residents' map, and a map served over the session's broker;
* ``drill_harness``: the failure drills on the three-node cluster, and their stall times;
* ``fuzz_contract``, ``fuzz_strategies``, ``fuzz_profiles``, ``atheris_targets``: the fuzz tests' contract,
  Hypothesis strategies and profiles, and the atheris (libFuzzer) targets run in a subprocess.
"""
