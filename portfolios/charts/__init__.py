"""Charts of the report and the pages: pure functions, plain data in, a plotly Figure out.

No Django and no model instances here: the report service hands plain lists, dicts and floats;
`chart_html` embeds a report figure without plotly.js (the page loads the one static copy); the
dashboard and portfolio pages' small charts are in `pages`.
"""

from .allocation import allocation_pie, weights_bars
from .base import chart_html
from .correlation import correlation_heatmap
from .drift import drift_chart
from .frontier import frontier_chart
from .glide import glide_path_chart
from .risk import risk_contributions_chart

__all__ = [
    "allocation_pie",
    "chart_html",
    "correlation_heatmap",
    "drift_chart",
    "frontier_chart",
    "glide_path_chart",
    "risk_contributions_chart",
    "weights_bars",
]
