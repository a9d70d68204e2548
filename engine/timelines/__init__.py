"""Timelines of spec changes: the format, recording, replay and plots."""
