"""Experiments: one config file -> every arm x seed trained, scored on the test split,
aggregated with confidence intervals, and written up as ``report.md``.

Import the submodules directly (``feraug.experiment.runner`` pulls in torch and training).
"""
