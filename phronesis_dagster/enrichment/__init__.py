"""Prospect enrichment, the parts that are not Dagster-specific: the request contract with the web
app, request validation and batching, the per-source result store, the status merge and progress
logging. The Dagster assets, sensors and checks live in `assets/`, `sensors/` and `checks/`."""
