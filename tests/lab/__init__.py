"""Tests that need root: each builds network namespaces (the `lab` fixture or its own)."""
