"""Tests that build the image and run containers (Docker; `make test-container`)."""
