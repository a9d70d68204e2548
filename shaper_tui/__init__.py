"""linkshaper's terminal UI. It talks to the engine only through `engine.protocol`: its
messages, over the control socket, with its client."""
