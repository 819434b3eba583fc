"""The tracking store (MLflow): runs, their leases, their artifacts, their state, and the export
the tables are built from."""
