"""The file edge: reading files someone else named (specs, traces, keys) without trusting what
they are, and writing files atomically. Parsing what was read stays in the pure model.
"""
