"""One module per `clambake` subcommand; each exposes `register(subparsers)`."""
