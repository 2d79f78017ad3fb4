"""The command line: a thin shell that parses, plans, picks a target and maps errors to exit codes."""
