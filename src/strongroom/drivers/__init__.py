"""strongroom.drivers."""
