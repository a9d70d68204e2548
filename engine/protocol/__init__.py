"""The documented message protocol: its messages, the control socket that carries them, and a
client.
"""
