"""Reusable Pulumi components for Apache Airflow on Google Cloud (GKE + Cloud SQL)."""
