"""Our own lab, not something users deploy: the three-namespace lab, the demo, the harness that
runs and measures an engine in it (tests, benchmarks, screenshots) and the UDP probe.
"""
