"""The operating system's edge: AF_PACKET sockets, batched system calls, libc, interface state,
child processes. Imports nothing of ours.
"""
