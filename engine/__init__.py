"""linkshaper's engine: spec, impairment pipeline, packet I/O, workers, control. No UI here."""
