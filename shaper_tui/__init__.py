"""linkshaper's terminal UI. It talks to the engine only through `engine.protocol` messages."""
