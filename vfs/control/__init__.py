"""The control socket: the running daemon's server (`server`) and the CLI's client (`client`)."""
