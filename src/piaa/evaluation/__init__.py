"""How well methods agree with people: metrics, simulated and real worlds, the paper's protocol."""
