"""Building blocks of the Pillow backend's procedural images: prompt reading, noise, a planar canvas, scenes."""
