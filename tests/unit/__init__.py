"""Tests that need no root: the pure core, the daemon over socket pairs, the TUI, the files."""
