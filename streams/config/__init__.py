"""Files read and validated on load: region packs, rule files, the topic catalog, the access file,
webhook subscriptions, and the environment (settings).

Each loader turns a file into frozen core values and reports every mistake with the file, where in it,
the key and what was expected (``checks.Entry``/``checks.Problems`` are the one place those errors are
made; ``yamlfile.read_yaml`` the one YAML reader). May import core; never adapters, pipeline, runtime or
cli.
"""
