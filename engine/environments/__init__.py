"""Where an engine runs: the lab, the demo, shaped namespaces, the container's entrypoint, and the
commands they run.
"""
