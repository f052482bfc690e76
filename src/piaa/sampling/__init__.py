"""Which pair of photos to ask a person about next."""
