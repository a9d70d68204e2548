"""What a link is and what it reports: the spec and its units, stats, traces, presets and rates.
Pure data and validation; imports nothing else of ours.
"""
