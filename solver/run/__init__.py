"""Where re-solves run: an execution ``Context`` (one pool per analysis, or any
``concurrent.futures``-shaped executor) and progress sinks (a bar on a terminal, lines otherwise)."""

from solver.run.context import Context, Failed
from solver.run.progress import BarProgress, LineProgress, NullProgress, Progress

__all__ = ["BarProgress", "Context", "Failed", "LineProgress", "NullProgress", "Progress"]
