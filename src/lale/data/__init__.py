"""Data: class schemas, datasets, transforms, synthetic scenes and raster preparation."""
