"""dita: an execution kernel for trading strategies."""
