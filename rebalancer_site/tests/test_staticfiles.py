"""The static files finders: plotly.min.js served from the installed package; anything missing is missing."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.views import serve
from django.http import Http404
from django.test import RequestFactory, override_settings

from rebalancer_site.staticfiles import PLOTLY_JS


def test_plotly_is_found_and_a_missing_file_is_not():
    assert finders.find(PLOTLY_JS).endswith("plotly.min.js")
    assert finders.find("css/no-such-file.css") is None
    assert finders.find("css/no-such-file.css", find_all=True) == []


@override_settings(DEBUG=True)
def test_a_missing_static_file_answers_404_not_500():
    with pytest.raises(Http404):
        serve(RequestFactory().get("/static/css/no-such-file.css"), "css/no-such-file.css")
