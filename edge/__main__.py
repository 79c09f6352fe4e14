"""`python -m edge` is the same as the `edge-gateway` command."""

from edge.cli import main

raise SystemExit(main())
