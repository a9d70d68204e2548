"""Shaped network namespaces (`linkshaper ns ...`) with their two backends, kernel tc and the
engine, and the commands every environment runs (`ip`, `tc`, an engine's command line).
"""
