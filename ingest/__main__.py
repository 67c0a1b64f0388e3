"""Entry point for `python -m ingest`."""

import sys

try:
    from ingest.cli import main
except KeyboardInterrupt:  # Ctrl-C while the imports load: one line, not a traceback
    print("error: interrupted before anything was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
