"""The `linkshaper` command line."""
