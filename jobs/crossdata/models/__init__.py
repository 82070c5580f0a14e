"""Predict: churn and lifetime value models tracked in MLflow (a later stage; nothing here yet)."""
