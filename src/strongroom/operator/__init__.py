"""strongroom.operator."""
