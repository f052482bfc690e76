"""What comes in: photos (decoded, upright, sRGB), crowd label files, and the benchmark data sets."""
