"""strongroom.templating."""
