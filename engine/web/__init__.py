"""The browser UI served at `/` (static files)."""
