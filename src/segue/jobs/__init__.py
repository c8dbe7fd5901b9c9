"""The runs people start, on top of the library layers: train, evaluate, benchmark, tune,
promote and the retraining pipeline. A job may import any layer; no layer imports a job."""
