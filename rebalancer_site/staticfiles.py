"""A static-files finder for plotly.min.js, taken from the installed plotly package.

The reports embed one shared, cacheable copy served by the app (and collected by collectstatic),
so they work offline and the file always matches the plotly version the figures are built with.
"""

from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"


class _VendorStorage(FileSystemStorage):
    prefix = "vendor"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = _VendorStorage(location=str(_PACKAGE_DATA))

    def check(self, **kwargs) -> list:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        if path != PLOTLY_JS:
            return []  # as Django's finders answer: a None here became a match of None (a 500)
        match = str(_PACKAGE_DATA / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage
