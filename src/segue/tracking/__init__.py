"""MLflow run logging, model packaging, the registry and the promotion gate."""
