"""The training pipeline that writes the model bundle the service serves."""
