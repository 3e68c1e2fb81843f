"""The web UI's pure rendering layer: query records in, inline SVG (``markupsafe.Markup``) out.

No I/O and no clock: each function is given everything it draws, escapes every value that
came from a user, and returns markup a template can insert as it is. The CSS classes it uses
are styled by ``ui/static/graph.css``.
"""

from .charts import metric_chart_svg, state_bar_svg
from .graph_svg import run_graph_svg, version_graph_svg
from .groups import group_key
from .layout import Layout, count_crossings, layout
from .timeline import timeline_svg

__all__ = [
    "Layout",
    "count_crossings",
    "group_key",
    "layout",
    "metric_chart_svg",
    "run_graph_svg",
    "state_bar_svg",
    "timeline_svg",
    "version_graph_svg",
]
