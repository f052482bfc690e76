"""The aesthetic model: the head of the paper's Fig. 4, its losses and training, personal profiles and
the scorer that puts them to use."""
