"""The `dita` subcommands, one module each; each module offers `register(subparsers)`."""
