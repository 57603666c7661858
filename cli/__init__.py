"""The ``feel`` command line: one module per subcommand."""
