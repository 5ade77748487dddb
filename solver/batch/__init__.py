"""Batch runs over many scenarios (``envelope batch``): sweep files expanded into points, run on an engine
(serial, a local process pool, or Dask distributed), every result committed to one resumable Parquet store.

- ``expand(paths, sweep, solver)`` → ``Expansion`` (the points, each with its store id);
- ``run_batch(expansion, folder, engine=…, workers=…)`` → ``BatchReport``;
- ``open_results(folder)`` → ``Results``: ``runs`` / ``plans`` as pandas, Arrow or DuckDB (``.sql(...)``);
- ``engine_context(engine, workers, scheduler)`` → an execution ``Context`` on the same engines for the
  sensitivity analyses (``ladder(scenario, context=ctx)``).

See docs/batch.md.
"""

from solver.batch.runner import BatchReport, engine_context, run_batch
from solver.batch.store import Results, open_results, read_results
from solver.batch.sweep import Expansion, Point, expand

__all__ = ["BatchReport", "Expansion", "Point", "Results", "engine_context", "expand", "open_results", "read_results",
           "run_batch"]
