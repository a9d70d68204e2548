"""What users deploy: the container image's entrypoint and its sidecar mode, and the interface
take-over they share.
"""
