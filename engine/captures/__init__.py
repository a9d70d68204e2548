"""Captures of what the links did to each frame: pcapng files (written and read with scapy)
and their summaries."""
