"""The command line (`python -m modekit` / `modekit`): the parser (options, groups, help) and the
commands it dispatches to."""
