"""The package's version, in this one place: the wheel's metadata (pyproject reads it from here
through hatch), `linkshaper --version`, `tui --version`, the control protocol's hello and the
HTTP API all show this string."""

__version__ = "0.2.0"
