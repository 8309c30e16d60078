"""imagenot audit: how unlike the contrast dataset is from the reference (class, image and label level)."""
