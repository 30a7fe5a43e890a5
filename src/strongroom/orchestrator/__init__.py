"""strongroom.orchestrator."""
