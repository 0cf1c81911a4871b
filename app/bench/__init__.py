"""The benchmark: ZSSR against bicubic, one module per protocol (`ideal`, `photo8x`), run by `python -m app.bench`.

The ideal protocol's names are re-exported here (`from app import bench; bench.make_pair(...)`). The photo8x
protocol is not imported here: it runs the web job path, which pulls in Flask and the job layer.
"""

from app.bench.ideal import gradual_steps, main, make_pair, markdown, run_image, summarize

__all__ = ["gradual_steps", "main", "make_pair", "markdown", "run_image", "summarize"]
