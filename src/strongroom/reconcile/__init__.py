"""strongroom.reconcile."""
