"""`linkshaper doctor`: what this machine and this process can do, check by check (`host`,
`tc_probe`, `engine_checks`), whether that is enough for a command line (`report`), and all
of them together (`diagnosis`). Kept empty: `tc_probe` runs as a child of its own, which
should import nothing else."""
