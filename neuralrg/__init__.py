"""Neural Network Renormalization Group (Li & Wang, arXiv:1802.02840)."""
__version__ = "0.1.0"
