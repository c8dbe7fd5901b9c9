"""MLflow runs, model packages, the registry, the promotion gate's policy and its lock.

    stores.py         store URIs: SQLite, HTTP, PostgreSQL, the Optuna storage
    runs.py           ``TrackingStore``: logging one training run through one client
    package.py        ``ModelPackage``: the servable data format (scorer, catalogue, known users)
    pyfunc.py         the package as an MLflow pyfunc model, and logging it
    registry.py       ``Registry``: versions, aliases and tags through one client
    package_cache.py  fetching a registered version's package for serving, cached
    promotion.py      the gate's policy as pure functions (decide, metric direction, tie rule)
    locks.py          the promotion lock (PostgreSQL advisory lock or file lock)

Nothing here imports a job (``segue.jobs``); the jobs drive these modules.
"""
