"""strongroom.stores."""
