"""linkshaper's engine: a library and a daemon in layers (see README "Layout"); it imports no
UI toolkit, so it runs headless."""
