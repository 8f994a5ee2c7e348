"""The containers of the workload's pods, one module per kind (map: components/airflow/__init__.py)."""
