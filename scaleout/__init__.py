"""Scale-out on one machine: N tasador replicas behind HAProxy (``python -m scaleout``)."""
