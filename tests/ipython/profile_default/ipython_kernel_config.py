# Plain tracebacks, so that strict nbval compares words, not colour codes.
c.InteractiveShell.colors = "nocolor"
