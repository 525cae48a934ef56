"""Neural style (Gatys et al.) as MXNet's classic example did it, with a PyTorch twin for comparison."""
