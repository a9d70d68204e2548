"""The running engine: the supervisor and its worker processes, and an engine hosted in a caller's
process.
"""
