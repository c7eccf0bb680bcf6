"""The MLOps layer: the only code that knows the params files, DVC (``dvc.yaml``/``dvc.lock``)
and MLflow. The library (models, data, tasks, engine) never imports it; it imports the library.

- :mod:`hrnet.mlops.rows`: the one reader of ``params.yaml`` and ``benchmarks/params.yaml``
- :mod:`hrnet.mlops.tracking`: MLflow runs, metrics, the model registry
- :mod:`hrnet.mlops.report`: ``reports/BENCHMARKS.md`` and ``reports/index.html``
"""
