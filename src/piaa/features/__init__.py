"""Images -> feature maps: the fast extraction engine and the reference corpus with its neighbour index."""
