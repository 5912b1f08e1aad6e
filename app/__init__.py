"""tasador: a Madrid house-price RandomForest served as an HTTP microservice."""
