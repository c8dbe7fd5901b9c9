"""The bundled demo sample and the seeded generators that made it (:mod:`segue.sample.synth`).

Nothing at runtime imports this package: ingestion reads files, and only `segue data synth`,
`segue demo`, the tests and the benchmarks generate data.
"""
