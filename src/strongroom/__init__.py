"""strongroom: secrets from your own stores, resources through drivers, workloads on Kubernetes."""

__version__ = "0.1.0"
